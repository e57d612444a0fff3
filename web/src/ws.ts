/**
 * One WebSocket to the venue, kept alive: reconnects with backoff after any close, sends a
 * ping when quiet and treats a silent socket as dead, re-authenticates and re-sends every
 * subscription on each new socket. Requests (`place_order`, `cancel_order`, ...) carry an
 * `id` and resolve with the reply that echoes it.
 *
 * The state the user sees: `connecting` (first attempt), `live` (open, and authenticated if
 * there is a token), `reconnecting` (lost; retrying), `offline` (stopped).
 */

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface Frame {
  type: string;
  id?: string | number | null;
  [key: string]: unknown;
}

export interface Subscription {
  channel: string;
  symbol?: string;
  interval?: string;
  depth?: number;
}

export class WsRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export interface ConnectionOptions {
  /** Called for every frame, with `performance.now()` taken when the message event fired. */
  onFrame: (frame: Frame, arrived: number) => void;
  onState?: (state: ConnState) => void;
  /** A new socket opened (subscriptions are being re-sent): reset what depends on continuity. */
  onOpen?: () => void;
  onAuthFailed?: (code: string, message: string) => void;
  pingMs?: number;
  deadMs?: number;
  maxBackoffMs?: number;
}

const key = (s: Subscription): string => [s.channel, s.symbol ?? '', s.interval ?? ''].join('|');

export class Connection {
  state: ConnState = 'offline';
  private socket: WebSocket | null = null;
  private readonly subs = new Map<string, Subscription>();
  private readonly pending = new Map<string, Pending>();
  private token: string | null = null;
  private nextId = 1;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  private stopped = true;
  private authed = false;

  constructor(
    readonly url: string,
    private readonly opts: ConnectionOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.teardown();
    this.setState('offline');
  }

  get authenticated(): boolean {
    return this.authed;
  }

  /** Set or clear the access token: authenticates the live socket, or drops account streams. */
  setToken(token: string | null): void {
    const changed = token !== this.token;
    this.token = token;
    if (!changed) return;
    if (token === null) {
      for (const [k, s] of this.subs) if (s.channel === 'orders' || s.channel === 'balances') this.subs.delete(k);
      // A socket cannot be de-authenticated: start a fresh, anonymous one.
      if (this.socket) this.reconnectNow();
    } else if (this.socket?.readyState === WebSocket.OPEN) {
      this.sendAuth();
    }
  }

  subscribe(sub: Subscription): void {
    this.subs.set(key(sub), sub);
    if (this.socket?.readyState === WebSocket.OPEN) this.send({ op: 'subscribe', ...sub });
  }

  /** Ask again for a channel's snapshot (a book whose sequence has a gap). */
  resubscribe(sub: Subscription): void {
    this.subscribe(sub);
  }

  unsubscribe(sub: Subscription): void {
    if (this.subs.delete(key(sub)) && this.socket?.readyState === WebSocket.OPEN) this.send({ op: 'unsubscribe', ...sub });
  }

  /** Send an operation and wait for the frame that echoes its id (an `error` frame rejects). */
  request(op: string, fields: Record<string, unknown>, timeoutMs = 10_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
        reject(new WsRequestError(0, 'not_connected', 'not connected to the venue'));
        return;
      }
      const id = `r${this.nextId++}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WsRequestError(0, 'timeout', 'the venue did not answer in time'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ op, id, ...fields });
    });
  }

  /** Close the socket as if the network dropped it (tests and the "reconnect" button). */
  reconnectNow(): void {
    this.teardown();
    if (!this.stopped) this.scheduleRetry(0);
  }

  // -------------------------------------------------------------------------
  private open(): void {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.lastHeard = performance.now();
      this.authed = false;
      this.opts.onOpen?.();
      if (this.token) this.sendAuth();
      for (const sub of this.subs.values()) {
        if ((sub.channel === 'orders' || sub.channel === 'balances') && !this.token) continue;
        this.send({ op: 'subscribe', ...sub });
      }
      if (!this.token) this.goLive();
      this.startHeartbeat();
    };
    socket.onmessage = (event: MessageEvent) => {
      const arrived = performance.now();
      if (socket !== this.socket) return;
      this.lastHeard = arrived;
      let frame: Frame;
      try {
        frame = JSON.parse(event.data as string) as Frame;
      } catch {
        return;
      }
      this.route(frame, arrived);
    };
    socket.onclose = () => {
      if (socket !== this.socket) return;
      this.teardown();
      if (!this.stopped) this.scheduleRetry();
    };
    socket.onerror = () => {
      /* onclose follows */
    };
  }

  private route(frame: Frame, arrived: number): void {
    const id = frame.id;
    if (typeof id === 'string' && this.pending.has(id)) {
      const p = this.pending.get(id)!;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (frame.type === 'error') {
        const err = frame.error as { code: string; message: string };
        p.reject(new WsRequestError(Number(frame.status ?? 0), err.code, err.message));
      } else {
        p.resolve(frame);
      }
    }
    if (id === 'auth') {
      if (frame.type === 'authenticated') {
        this.authed = true;
        this.goLive();
      } else if (frame.type === 'error') {
        const err = frame.error as { code: string; message: string };
        this.goLive(); // the public streams still work
        this.opts.onAuthFailed?.(err.code, err.message);
      }
    }
    this.opts.onFrame(frame, arrived);
  }

  private sendAuth(): void {
    this.send({ op: 'auth', id: 'auth', token: this.token });
  }

  private goLive(): void {
    this.attempt = 0;
    this.setState('live');
  }

  private send(message: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(message));
  }

  private startHeartbeat(): void {
    const ping = this.opts.pingMs ?? 5_000;
    const dead = this.opts.deadMs ?? 12_000;
    this.heartbeat = setInterval(() => {
      const quiet = performance.now() - this.lastHeard;
      if (quiet > dead) {
        this.reconnectNow();
      } else if (quiet > ping) {
        this.send({ op: 'ping' });
      }
    }, Math.min(ping, 1_000));
  }

  private teardown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const socket = this.socket;
    this.socket = null;
    this.authed = false;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close();
      } catch {
        /* already closed */
      }
    }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new WsRequestError(0, 'disconnected', 'the connection to the venue was lost'));
    }
    this.pending.clear();
  }

  private scheduleRetry(delay?: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.setState('reconnecting');
    const max = this.opts.maxBackoffMs ?? 5_000;
    const wait = delay ?? Math.min(max, 250 * 2 ** Math.min(this.attempt, 5)) * (0.75 + Math.random() * 0.5);
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, wait);
  }

  private setState(state: ConnState): void {
    if (state === this.state) return;
    this.state = state;
    this.opts.onState?.(state);
  }
}
