import { describe, expect, it } from 'vitest';
import { requestToken } from '../http/auth.js';
import { generateApiKey } from '../services/users/api-keys.js';
import { alpacaHeaders, alpacaOrderBody, FACADE_CPU_RATIO_MAX, facadePart, facadeSchedule, renderFacadeMarkdown, type FacadeWindowInput } from './facade.js';
import { LatencyRecorder } from './stats.js';

const latency = (...ms: number[]) => {
  const r = new LatencyRecorder();
  for (const v of ms) r.record(v);
  return r;
};

const win = (target: 'native' | 'facade', round: number, accepted: number, apiCpuMs: number): FacadeWindowInput => ({
  target,
  round,
  durationS: 10,
  httpOk: accepted,
  latency: latency(1, 2, 3, 4),
  accepted,
  filled: accepted,
  acceptToFillMs: { count: accepted, p50: 5, p95: 8, p99: 9, max: 10, exact: true },
  apiCpuMs,
  totalCpuMs: apiCpuMs * 3,
  machineCpuMs: apiCpuMs * 4,
  errors: {},
  sides: { buy: accepted / 2, sell: accepted / 2 },
});

describe('facadeSchedule', () => {
  it('alternates native and facade, ABBA', () => {
    expect(facadeSchedule(1)).toEqual([
      { target: 'native', round: 1 },
      { target: 'facade', round: 1 },
    ]);
    expect(facadeSchedule(3).map((w) => `${w.target} ${w.round}`)).toEqual(['native 1', 'facade 1', 'facade 2', 'native 2', 'native 3', 'facade 3']);
  });
});

describe("the facade's request", () => {
  it("sends the key as Alpaca's header pair, which authenticates as the bearer token", () => {
    const { token } = generateApiKey();
    const headers = alpacaHeaders(token);
    const [, id, secret] = /^ptk_([0-9a-f]+)_(.+)$/.exec(token)!;
    expect(headers).toEqual({ 'apca-api-key-id': id, 'apca-api-secret-key': secret, 'content-type': 'application/json' });
    expect(requestToken(headers)).toBe(token);
  });

  it("is Alpaca's market order body", () => {
    expect(JSON.parse(alpacaOrderBody('AAPL', '1', 'sell'))).toEqual({ symbol: 'AAPL', qty: '1', side: 'sell', type: 'market', time_in_force: 'day' });
  });
});

describe('facadePart', () => {
  it('sums each side over its windows and holds the CPU ratio against the target', () => {
    const part = facadePart({
      inputs: [win('native', 1, 1000, 500), win('facade', 1, 1000, 560), win('facade', 2, 1000, 600), win('native', 2, 1000, 500)],
      rounds: 2,
      apiProcess: 'api',
      requests: { native: 'n', facade: 'f' },
    });
    expect(part.order).toEqual(['native 1', 'facade 1', 'facade 2', 'native 2']);
    expect(part.native).toMatchObject({ windows: 2, accepted: 2000, okPerS: 100, filledPerS: 100, apiCpuMs: 1000, apiCpuMsPerOrder: 0.5 });
    expect(part.facade.apiCpuMsPerOrder).toBeCloseTo(0.58);
    expect(part.native.latencyMs).toMatchObject({ count: 8, exact: true });
    expect(part.cpuPerOrderRatio).toBeCloseTo(1.16);
    expect(part.cpuPerOrderRatioByRound.map((r) => Math.round(r! * 100) / 100)).toEqual([1.12, 1.2]);
    expect(part.target).toBe(FACADE_CPU_RATIO_MAX);
    expect(part.pass).toBe(false);
    const md = renderFacadeMarkdown(part).join('\n');
    expect(md).toContain('**Facade CPU per order ÷ native: 1.160 (target ≤ 1.15): FAIL.**');
    expect(md).toContain('| facade 2 (POST /v2/orders) |');
  });

  it('passes at or under the target, and names errors', () => {
    const facade = { ...win('facade', 1, 1000, 550), errors: { '403 ORDER_REJECTED<-INSUFFICIENT_FUNDS': 2 } };
    const part = facadePart({ inputs: [win('native', 1, 1000, 500), facade], rounds: 1, apiProcess: 'api', requests: { native: 'n', facade: 'f' } });
    expect(part.pass).toBe(true);
    expect(part.notes.join(' ')).toContain('POST /v2/orders: 2 errors');
  });

  it('has no ratio without orders', () => {
    const part = facadePart({ inputs: [win('native', 1, 0, 500), win('facade', 1, 0, 500)], rounds: 1, apiProcess: 'api', requests: { native: 'n', facade: 'f' } });
    expect(part.cpuPerOrderRatio).toBeNull();
    expect(part.pass).toBeNull();
  });
});
