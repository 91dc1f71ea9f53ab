import { defineReaction, type Reaction } from '../../src/runtime/index.js';

/** A reaction to `Mail` events whose mail server always says no: it parks on the first mail, after one attempt. */
export function refusedMailer(): Reaction {
  return defineReaction({
    name: 'mailer',
    on: { types: ['Mail'] },
    retry: { attempts: 1, initialDelayMs: 1 },
    act: () => {
      throw new Error('the mail server said no');
    },
  });
}
