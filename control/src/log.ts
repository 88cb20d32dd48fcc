// The one logger factory: JSON lines (pino) on stderr, so stdout stays free
// for command output and journald/systemd capture stderr as-is.
import { pino } from 'pino';

export type Logger = pino.Logger;
export type LogLevel = pino.LevelWithSilent;

/** Creates the process logger; `destination` defaults to stderr (fd 2). */
export function createLogger(level: LogLevel, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
