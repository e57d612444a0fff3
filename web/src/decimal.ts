/**
 * Exact decimal arithmetic on the API's decimal strings, with BigInt fixed point.
 *
 * The venue speaks decimal strings ("58100.00", "0.0100"); they are never turned into
 * JavaScript numbers except to draw charts (`toNumber`). Everything shown to the user or
 * sent back to the venue goes through these functions, which never round: a value that
 * does not fit a step is reported, not silently changed.
 */

const DECIMAL = /^(-)?(\d+)(?:\.(\d*))?$/;
const LEADING = /^(-)?\.(\d+)$/;

/** A value `units / 10^scale`. */
export interface Dec {
  units: bigint;
  scale: number;
}

/** Parse a plain decimal string ("12", "-0.5", "3.", ".25"); null when it is not one. */
export function parse(text: string): Dec | null {
  const s = text.trim();
  let m = DECIMAL.exec(s);
  let sign = '';
  let whole = '0';
  let frac = '';
  if (m) {
    sign = m[1] ?? '';
    whole = m[2];
    frac = m[3] ?? '';
  } else {
    m = LEADING.exec(s);
    if (!m) return null;
    sign = m[1] ?? '';
    frac = m[2];
  }
  const units = BigInt(whole + frac) * (sign ? -1n : 1n);
  return { units, scale: frac.length };
}

const POW10: bigint[] = [];
export function pow10(n: number): bigint {
  if (n < 0) throw new RangeError('negative exponent');
  let v = POW10[n];
  if (v === undefined) {
    v = 10n ** BigInt(n);
    POW10[n] = v;
  }
  return v;
}

/** The number of decimals a step needs: "0.01" -> 2, "0.0001" -> 4, "5" -> 0, "0.50" -> 1. */
export function decimalsOf(step: string): number {
  const d = parse(step);
  if (!d) throw new Error(`not a decimal: ${step}`);
  let { units, scale } = d;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return scale;
}

/** Rescale without loss; null when `d` has non-zero digits beyond `scale`. */
export function rescale(d: Dec, scale: number): bigint | null {
  if (scale >= d.scale) return d.units * pow10(scale - d.scale);
  const f = pow10(d.scale - scale);
  return d.units % f === 0n ? d.units / f : null;
}

/** `text` as an integer number of `10^-scale` units, exactly; null if invalid or too precise. */
export function toUnits(text: string, scale: number): bigint | null {
  const d = parse(text);
  return d ? rescale(d, scale) : null;
}

/** The decimal string of `units / 10^scale` with exactly `scale` decimals. */
export function fromUnits(units: bigint, scale: number): string {
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  if (scale === 0) return (neg ? '-' : '') + digits;
  if (digits.length <= scale) digits = '0'.repeat(scale - digits.length + 1) + digits;
  const cut = digits.length - scale;
  return (neg ? '-' : '') + digits.slice(0, cut) + '.' + digits.slice(cut);
}

/**
 * Display `text` with `decimals` places: pads with zeros, or drops trailing zeros beyond
 * `decimals`. Never rounds: non-zero digits beyond `decimals` are kept.
 */
export function formatFixed(text: string, decimals: number): string {
  const d = parse(text);
  if (!d) return text;
  let { units, scale } = d;
  while (scale > decimals && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  if (scale < decimals) {
    units *= pow10(decimals - scale);
    scale = decimals;
  }
  return fromUnits(units, scale);
}

/** Thousands separators in the whole part: "1234567.50" -> "1,234,567.50". */
export function groupThousands(text: string): string {
  const m = /^(-?)(\d+)(\.\d*)?$/.exec(text);
  if (!m) return text;
  return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (m[3] ?? '');
}

/** `text` to `step`'s decimals, grouped: the way prices and sizes are shown. */
export function display(text: string, step: string, group = true): string {
  const out = formatFixed(text, decimalsOf(step));
  return group ? groupThousands(out) : out;
}

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.units * pow10(scale - a.scale), b.units * pow10(scale - b.scale), scale];
}

function need(text: string): Dec {
  const d = parse(text);
  if (!d) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  return d;
}

export function cmp(a: string, b: string): number {
  const [x, y] = align(need(a), need(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

export function add(a: string, b: string): string {
  const [x, y, scale] = align(need(a), need(b));
  return fromUnits(x + y, scale);
}

export function sub(a: string, b: string): string {
  const [x, y, scale] = align(need(a), need(b));
  return fromUnits(x - y, scale);
}

/** The exact product (its scale is the sum of the operands' scales). */
export function mul(a: string, b: string): string {
  const x = need(a);
  const y = need(b);
  return fromUnits(x.units * y.units, x.scale + y.scale);
}

export function isZero(text: string): boolean {
  const d = parse(text);
  return d !== null && d.units === 0n;
}

/** Whether `value` is a whole multiple of `step` (both decimal strings; step > 0). */
export function isMultiple(value: string, step: string): boolean {
  const [x, y] = align(need(value), need(step));
  return y !== 0n && x % y === 0n;
}

/**
 * Percent change from `from` to `to` as a string with `decimals` places, truncated toward
 * zero (a ratio for display; no price is rounded). Null when `from` is zero.
 */
export function percentChange(from: string, to: string, decimals = 2): string | null {
  const [x, y] = align(need(from), need(to));
  if (x === 0n) return null;
  const scaled = ((y - x) * 100n * pow10(decimals)) / x;
  return fromUnits(scaled, decimals);
}

/** A JavaScript number, for drawing charts only. */
export function toNumber(text: string): number {
  return Number(text);
}
