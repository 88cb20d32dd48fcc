// zod building blocks shared by the config schema's sections, so every
// section words its errors the same way.
import { z } from 'zod';

/** zod error option: "is required" when the key is missing, `expected` otherwise. */
export const expect = (expected: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : expected),
});

export const intIn = (min: number, max: number) => {
  const message = { error: `expected an integer from ${min} to ${max}` };
  return z.int(message).min(min, message).max(max, message);
};

export const positiveInt = () => z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });

/** A non-empty string; `what` is the whole error message ("expected a path"). */
export const nonEmpty = (what: string) => z.string(expect(what)).min(1, { error: what });
