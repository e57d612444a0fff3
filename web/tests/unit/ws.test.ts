import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection, type Frame } from '../../src/ws';

/** A stand-in for the browser's WebSocket: records what is sent, lets the test play the server. */
class FakeSocket {
  static OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Array<Record<string, unknown>> = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  // The server's side:
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(f: Frame) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.();
  }
}

const last = () => FakeSocket.all[FakeSocket.all.length - 1];

describe('Connection', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal('WebSocket', FakeSocket);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('subscribes on open and is live', () => {
    const states: string[] = [];
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {}, onState: (s) => states.push(s) });
    c.subscribe({ channel: 'book', symbol: 'BTC-USD', depth: 100 });
    c.start();
    last().open();
    expect(last().sent).toEqual([{ op: 'subscribe', channel: 'book', symbol: 'BTC-USD', depth: 100 }]);
    expect(states).toEqual(['connecting', 'live']);
  });

  it('authenticates first, and is live once the venue says so', () => {
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {} });
    c.setToken('T');
    c.subscribe({ channel: 'orders' });
    c.subscribe({ channel: 'trades', symbol: 'BTC-USD' });
    c.start();
    last().open();
    expect(last().sent.map((m) => m.op)).toEqual(['auth', 'subscribe', 'subscribe']);
    expect(c.state).toBe('connecting');
    last().frame({ type: 'authenticated', id: 'auth', account_id: 1 });
    expect(c.state).toBe('live');
    expect(c.authenticated).toBe(true);
  });

  it('reconnects after a drop and sends every subscription again', () => {
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {} });
    c.subscribe({ channel: 'book', symbol: 'BTC-USD' });
    c.subscribe({ channel: 'candles', symbol: 'BTC-USD', interval: '1m' });
    c.start();
    last().open();
    last().drop();
    expect(c.state).toBe('reconnecting');
    vi.advanceTimersByTime(400);
    expect(FakeSocket.all).toHaveLength(2);
    last().open();
    expect(c.state).toBe('live');
    expect(last().sent.map((m) => m.channel)).toEqual(['book', 'candles']);
  });

  it('backs off while the server stays away', () => {
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {}, maxBackoffMs: 2_000 });
    c.start();
    for (let i = 0; i < 6; i++) {
      last().drop();
      vi.advanceTimersByTime(2_600);
    }
    expect(FakeSocket.all).toHaveLength(7);
    expect(c.state).toBe('reconnecting');
  });

  it('treats a silent socket as dead', () => {
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {}, pingMs: 1_000, deadMs: 3_000 });
    c.start();
    last().open();
    vi.advanceTimersByTime(2_100);
    expect(last().sent).toContainEqual({ op: 'ping' });
    expect(c.state).toBe('live');
    last().frame({ type: 'pong' }); // an answer: alive
    vi.advanceTimersByTime(2_100);
    expect(c.state).toBe('live');
    vi.advanceTimersByTime(2_000); // nothing heard for over 3 s
    expect(c.state).toBe('reconnecting');
  });

  it('answers requests by id and rejects them when the socket goes', async () => {
    const c = new Connection('ws://x/v1/ws', { onFrame: () => {} });
    c.start();
    last().open();
    const placed = c.request('place_order', { order: { symbol: 'BTC-USD' } });
    const id = last().sent.at(-1)!.id as string;
    last().frame({ type: 'order', id, order: { id: '7' } });
    await expect(placed).resolves.toMatchObject({ order: { id: '7' } });

    const refused = c.request('cancel_order', { order_id: '7' });
    const id2 = last().sent.at(-1)!.id as string;
    last().frame({ type: 'error', id: id2, status: 404, error: { code: 'unknown_order', message: 'no such order' } });
    await expect(refused).rejects.toMatchObject({ code: 'unknown_order', status: 404 });

    const lost = c.request('cancel_order', { order_id: '8' });
    last().drop();
    await expect(lost).rejects.toMatchObject({ code: 'disconnected' });
  });

  it('hands every frame on with its arrival time', () => {
    const seen: Array<[string, number]> = [];
    const c = new Connection('ws://x/v1/ws', { onFrame: (f, t) => seen.push([f.type, t]) });
    c.start();
    last().open();
    last().frame({ type: 'book', symbol: 'BTC-USD', u: 5, bids: [], asks: [] });
    expect(seen).toHaveLength(1);
    expect(seen[0][0]).toBe('book');
    expect(typeof seen[0][1]).toBe('number');
  });
});
