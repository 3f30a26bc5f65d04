import * as assert from 'node:assert/strict';
import { test } from 'node:test';

import { AcceptanceCounter } from '../telemetry';
import { FakeLog } from './fakes';

test('counts offers and acceptances per language and logs each acceptance', () => {
  const log = new FakeLog();
  const counter = new AcceptanceCounter(log);
  assert.equal(counter.summary(), 'accepted 0 of 0 offered completions (0%)');
  counter.offered('python', 3);
  counter.offered('go', 1);
  counter.offered('rust', 0);
  counter.accepted('python');
  assert.deepEqual(counter.totals(), { offered: 4, accepted: 1 });
  assert.equal(counter.summary(), 'accepted 1 of 4 offered completions (25%); go 0/1, python 1/3');
  assert.deepEqual(log.lines, [
    'info: telemetry (local only): accepted 1 of 4 offered completions (25%); go 0/1, python 1/3',
  ]);
});
