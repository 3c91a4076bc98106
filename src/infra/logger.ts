import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export function createLogger(level: LogLevel, role: string): Logger {
  return pino({
    level,
    base: { role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Credentials never reach the log, whichever object carries them.
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.api_key', 'api_key'], censor: '[redacted]' },
  });
}
