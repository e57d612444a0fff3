// A real Rialto venue for the browser tests: `python -m control up` on a free port over a
// temporary data directory, with cheap Argon2 and generous rate limits (tests only).
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');
const PYTHON = process.env.RIALTO_PYTHON ?? join(ROOT, '.venv/bin/python');

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Venue {
  constructor({ port, data } = {}) {
    this.port = port ?? 0;
    this.data = data ?? join(mkdtempSync(join(tmpdir(), 'rialto-web-')), 'data');
    this.log = `${this.data}.log`;
    this.proc = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 30_000) {
    if (!this.port) this.port = await freePort();
    const out = openSync(this.log, 'a');
    this.proc = spawn(PYTHON, ['-m', 'control', 'up', '--port', String(this.port), '--data', this.data], {
      cwd: ROOT,
      env: {
        ...process.env,
        PYTHONPATH: ROOT,
        RIALTO_ARGON2: 'cheap',
        RIALTO_LOG_LEVEL: 'warning',
        RIALTO_RATE_IP_BURST: '1000000',
        RIALTO_RATE_IP_PER_SECOND: '1000000',
        RIALTO_RATE_ACCOUNT_BURST: '1000000',
        RIALTO_RATE_ACCOUNT_PER_SECOND: '1000000',
      },
      stdio: ['ignore', out, out],
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`venue exited with ${this.proc.exitCode}:\n${this.tail()}`);
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.status === 200) return this;
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    this.kill();
    throw new Error(`venue not ready in ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  tail(lines = 30) {
    try {
      return readFileSync(this.log, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

/** A REST client for set-up and load that the UI is not under test for. */
export class Client {
  constructor(url, token = null) {
    this.url = url;
    this.token = token;
  }

  async call(method, path, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const r = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error(`${method} ${path} -> ${r.status} ${text}`);
    return data;
  }

  static async user(url, username, password = 'load generator passphrase 42') {
    const c = new Client(url);
    await c.call('POST', '/v1/auth/register', { username, password });
    c.token = (await c.call('POST', '/v1/auth/login', { username, password })).access_token;
    return c;
  }
}
