/**
 * Redis client construction. Producers fail fast when Redis is down (bounded retries per
 * command and a connect timeout) instead of queueing requests forever; long-lived consumers
 * reconnect with capped back-off.
 */
import { Redis } from 'ioredis';

export const REDIS_CONNECT_TIMEOUT_MS = 3_000;
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;

export function createRedis(url: string, options: { name?: string; blocking?: boolean } = {}): Redis {
  return new Redis(url, {
    connectionName: options.name ? `papertrade:${options.name}` : 'papertrade',
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    // A blocking client (XREADGROUP BLOCK) must not time out while it legitimately waits.
    commandTimeout: options.blocking ? undefined : REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    lazyConnect: false,
    // Commands issued in the same event-loop tick (concurrent requests' HGETs and XADDs) go out
    // in one socket write: fewer syscalls and wake-ups per order on a busy api. Order is kept.
    enableAutoPipelining: !options.blocking,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
  });
}
