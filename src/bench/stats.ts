/**
 * Latency recording for the benchmark: every sample is kept (up to a cap) for exact percentiles
 * at the end, and a log-bucketed histogram (1 % wide buckets, HdrHistogram-like) gives cheap
 * running percentiles for the progress line and stands in if the sample cap is reached.
 */

/** Samples kept for exact percentiles (8 bytes each: 5 M samples = 40 MB). */
export const SAMPLES_MAX = 5_000_000;

const BUCKET_BASE_MS = 0.001;
const BUCKET_RATIO = 1.01;
const LOG_RATIO = Math.log(BUCKET_RATIO);
/** Buckets up to ~1,000 s. */
const BUCKETS = Math.ceil(Math.log(1_000_000 / BUCKET_BASE_MS) / LOG_RATIO) + 1;

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** True when computed from every sample; false when from the histogram (1 % precision). */
  exact: boolean;
}

export class LatencyRecorder {
  private samples = new Float64Array(1024);
  private n = 0;
  private readonly buckets = new Uint32Array(BUCKETS);
  private total = 0;
  private maxMs = 0;

  constructor(private readonly samplesMax = SAMPLES_MAX) {}

  get count(): number {
    return this.total;
  }

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    this.total += 1;
    if (v > this.maxMs) this.maxMs = v;
    const i = v <= BUCKET_BASE_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(v / BUCKET_BASE_MS) / LOG_RATIO));
    this.buckets[i]! += 1;
    if (this.n < this.samplesMax) {
      if (this.n === this.samples.length) {
        const grown = new Float64Array(Math.min(this.samplesMax, this.samples.length * 2));
        grown.set(this.samples);
        this.samples = grown;
      }
      this.samples[this.n++] = v;
    }
  }

  /**
   * Adds every sample of `other` (several windows measured apart, summarised as one): exact
   * while both kept all their samples and the sum fits under the cap, else from the histogram.
   */
  merge(other: LatencyRecorder): void {
    for (let i = 0; i < BUCKETS; i++) this.buckets[i]! += other.buckets[i]!;
    this.total += other.total;
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs;
    const take = Math.min(other.n, this.samplesMax - this.n);
    if (take <= 0) return;
    if (this.n + take > this.samples.length) {
      const grown = new Float64Array(Math.min(this.samplesMax, Math.max(this.samples.length * 2, this.n + take)));
      grown.set(this.samples.subarray(0, this.n));
      this.samples = grown;
    }
    this.samples.set(other.samples.subarray(0, take), this.n);
    this.n += take;
  }

  /** A percentile (0..100) from the histogram: the upper bound of its bucket (≤ 1 % high). */
  histogramPercentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return Math.min(this.maxMs, BUCKET_BASE_MS * BUCKET_RATIO ** i);
    }
    return this.maxMs;
  }

  percentiles(): Percentiles {
    if (this.total === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, exact: true };
    if (this.n === this.total) {
      const sorted = this.samples.slice(0, this.n).sort();
      const at = (p: number) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!;
      return { count: this.total, p50: at(50), p95: at(95), p99: at(99), max: this.maxMs, exact: true };
    }
    return {
      count: this.total,
      p50: this.histogramPercentile(50),
      p95: this.histogramPercentile(95),
      p99: this.histogramPercentile(99),
      max: this.maxMs,
      exact: false,
    };
  }
}
