import { display, groupThousands } from '../decimal';
import { trimZeros } from '../ticket';
import type { Instrument } from '../types';

export function timeOf(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function price(text: string | null, inst: Instrument | undefined): string {
  if (text === null) return '—';
  return inst ? display(text, inst.tick_size) : text;
}

export function size(text: string | null, inst: Instrument | undefined): string {
  if (text === null) return '—';
  return inst ? display(text, inst.lot_size) : text;
}

/** An amount of an asset: exact, grouped, trailing zeros dropped. */
export function amount(text: string): string {
  return groupThousands(trimZeros(text));
}

export const words = (s: string) => s.replace(/_/g, ' ');
