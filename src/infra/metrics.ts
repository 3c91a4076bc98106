/**
 * Metric constructors that reuse a metric already registered under the same name, so a role
 * created twice in one process (tests, `start` restarting a component) shares its series.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function counter<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: L[] = []): Counter<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: registry ? [registry] : [] });
}

export function histogram<L extends string>(
  registry: Registry | undefined,
  name: string,
  help: string,
  buckets: number[],
  labelNames: L[] = [],
): Histogram<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  return new Histogram({ name, help, buckets, labelNames, registers: registry ? [registry] : [] });
}

export function gauge<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: L[] = []): Gauge<L> {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: registry ? [registry] : [] });
}
