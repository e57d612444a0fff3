/**
 * Measurements the browser test reads (and a curious user can, in the console, as
 * `__rialto.perf`): for each book frame of the shown symbol, the time from the WebSocket
 * message event to the end of the animation frame that rendered it; and the moment the first
 * screen became usable (book and ticket rendered, socket live), as the performance mark
 * `rialto:usable`.
 */

const MAX_SAMPLES = 50_000;

export class Perf {
  /** Lags in ms, arrival to rendered. */
  bookLags: number[] = [];
  /** Price levels changed by the book frames measured (a frame carries every level changed in one flush). */
  levelChanges = 0;
  framesRendered = 0;
  gaps = 0;
  usableAt: number | null = null;
  /** Lags in ms for `trades` frames, arrival to the tape drawn. */
  tapeLags: number[] = [];
  private waiting: number[] = [];
  private waitingTape: number[] = [];

  tradesArrived(t: number): void {
    this.waitingTape.push(t);
  }

  tapeRendered(now: number): void {
    for (const t of this.waitingTape) if (this.tapeLags.length < MAX_SAMPLES) this.tapeLags.push(now - t);
    this.waitingTape.length = 0;
  }

  arrived(t: number, levels = 0): void {
    this.levelChanges += levels;
    this.waiting.push(t);
  }

  rendered(now: number): void {
    if (this.waiting.length === 0) return;
    for (const t of this.waiting) {
      if (this.bookLags.length < MAX_SAMPLES) this.bookLags.push(now - t);
    }
    this.waiting.length = 0;
    this.framesRendered++;
  }

  markUsable(): void {
    if (this.usableAt !== null) return;
    this.usableAt = performance.now();
    performance.mark('rialto:usable');
  }

  reset(): void {
    this.bookLags = [];
    this.tapeLags = [];
    this.levelChanges = 0;
    this.framesRendered = 0;
    this.waiting.length = 0;
    this.waitingTape.length = 0;
  }

  /** Pending arrivals not yet drawn (a growing number would mean falling behind). */
  backlog(): number {
    return this.waiting.length + this.waitingTape.length;
  }
}

export const perf = new Perf();
