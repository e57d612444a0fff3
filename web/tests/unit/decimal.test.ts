import { describe, expect, it } from 'vitest';
import {
  add, cmp, decimalsOf, display, formatFixed, fromUnits, groupThousands, isMultiple, mul, parse, percentChange, sub, toUnits,
} from '../../src/decimal';

describe('parse', () => {
  it('reads plain decimals exactly', () => {
    expect(parse('58100.00')).toEqual({ units: 5810000n, scale: 2 });
    expect(parse('-0.5')).toEqual({ units: -5n, scale: 1 });
    expect(parse('.25')).toEqual({ units: 25n, scale: 2 });
    expect(parse('3.')).toEqual({ units: 3n, scale: 0 });
    expect(parse(' 7 ')).toEqual({ units: 7n, scale: 0 });
  });
  it('refuses what is not a plain decimal', () => {
    for (const s of ['', '1e5', '0x10', '1,000', 'NaN', 'Infinity', '1.2.3', '--1', '.', '+1']) expect(parse(s)).toBeNull();
  });
  it('keeps digits a float would lose', () => {
    expect(fromUnits(parse('9007199254740993.000000001')!.units, 9)).toBe('9007199254740993.000000001');
  });
});

describe('steps and units', () => {
  it('counts a step\'s decimals', () => {
    expect(decimalsOf('0.01')).toBe(2);
    expect(decimalsOf('0.0001')).toBe(4);
    expect(decimalsOf('5')).toBe(0);
    expect(decimalsOf('0.50')).toBe(1);
  });
  it('converts to units only when exact', () => {
    expect(toUnits('0.0100', 4)).toBe(100n);
    expect(toUnits('0.01', 4)).toBe(100n);
    expect(toUnits('0.00005', 4)).toBeNull();
    expect(toUnits('0.000050', 4)).toBeNull();
    expect(toUnits('0.000000', 4)).toBe(0n);
  });
  it('formats units at a fixed scale', () => {
    expect(fromUnits(5n, 4)).toBe('0.0005');
    expect(fromUnits(-123456n, 2)).toBe('-1234.56');
    expect(fromUnits(42n, 0)).toBe('42');
  });
  it('checks multiples of a step', () => {
    expect(isMultiple('60000.05', '0.05')).toBe(true);
    expect(isMultiple('60000.07', '0.05')).toBe(false);
    expect(isMultiple('0.0300', '0.0001')).toBe(true);
    expect(isMultiple('0.00015', '0.0001')).toBe(false);
  });
});

describe('display: decimal strings to tick and lot sized text, never rounded', () => {
  it('pads to the step', () => {
    expect(display('60000', '0.01')).toBe('60,000.00');
    expect(display('0.03', '0.0001')).toBe('0.0300');
  });
  it('drops only zeros beyond the step', () => {
    expect(display('1796.400000', '0.01')).toBe('1,796.40');
    expect(formatFixed('0.02997000', 4)).toBe('0.02997'); // more precise than the lot: kept, not rounded
    expect(formatFixed('2.675', 2)).toBe('2.675'); // a float would print 2.67 or 2.68
  });
  it('groups thousands in the whole part only', () => {
    expect(groupThousands('1234567.1234')).toBe('1,234,567.1234');
    expect(groupThousands('-1000')).toBe('-1,000');
    expect(groupThousands('999.5')).toBe('999.5');
  });
});

describe('arithmetic', () => {
  it('adds, subtracts, multiplies and compares exactly', () => {
    expect(add('0.1', '0.2')).toBe('0.3');
    expect(sub('97000.000000', '1800.00')).toBe('95200.000000');
    expect(mul('60000.00', '0.0300')).toBe('1800.000000');
    expect(mul('0.1', '0.2')).toBe('0.02');
    expect(cmp('1.10', '1.1')).toBe(0);
    expect(cmp('-1', '0.5')).toBe(-1);
  });
  it('computes a percent change truncated toward zero', () => {
    expect(percentChange('60000.00', '61500.00')).toBe('2.50');
    expect(percentChange('60000.00', '59000.00')).toBe('-1.66');
    expect(percentChange('0', '1')).toBeNull();
  });
});
