/**
 * Light and dark themes: the system's preference (prefers-color-scheme) until the user picks
 * one with the toggle; the pick is remembered. CSS reads `data-theme` on <html>; the charts
 * read the resolved colours through `chartColors()`.
 */

import { signal } from '@preact/signals';

export type Theme = 'light' | 'dark';
const KEY = 'rialto.theme';

const media = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : null;
  } catch {
    return null;
  }
}

export const theme = signal<Theme>(stored() ?? (media?.matches ? 'dark' : 'light'));

function apply(t: Theme): void {
  document.documentElement.dataset.theme = t;
  document.documentElement.style.colorScheme = t;
}

export function initTheme(): void {
  apply(theme.value);
  media?.addEventListener('change', (e) => {
    if (stored() === null) {
      theme.value = e.matches ? 'dark' : 'light';
      apply(theme.value);
    }
  });
}

export function setTheme(t: Theme): void {
  theme.value = t;
  try {
    localStorage.setItem(KEY, t);
  } catch {
    /* not remembered */
  }
  apply(t);
}

export interface ChartColors {
  background: string;
  text: string;
  grid: string;
  border: string;
  up: string;
  down: string;
  upFill: string;
  downFill: string;
  volumeUp: string;
  volumeDown: string;
}

export function chartColors(): ChartColors {
  const css = getComputedStyle(document.documentElement);
  const v = (name: string) => css.getPropertyValue(name).trim();
  return {
    background: v('--panel'),
    text: v('--muted'),
    grid: v('--grid'),
    border: v('--line'),
    up: v('--buy'),
    down: v('--sell'),
    upFill: v('--buy-fill'),
    downFill: v('--sell-fill'),
    volumeUp: v('--buy-volume'),
    volumeDown: v('--sell-volume'),
  };
}
