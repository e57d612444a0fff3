// Headless Chromium from the distribution (/usr/bin/chromium), driven by playwright-core.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A browser with a fresh profile (playwright makes a new temporary user-data-dir per launch). */
export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Retry `check` (which throws while the condition does not hold) until it passes or time runs out. */
export async function eventually(check, { timeout = 10_000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const err = new Error(`${what} not met in ${timeout} ms: ${last?.message ?? last}`);
      err.cause = last;
      throw err;
    }
    await sleep(interval);
  }
}

export async function text(locator) {
  return ((await locator.textContent({ timeout: 2_000 })) ?? '').trim();
}
