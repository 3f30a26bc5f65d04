import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { render, SHOW_LOG_COMMAND, TOGGLE_COMMAND, type StatusState } from '../status';
import { deferred, ERROR_BG, statusBar } from './fakes';

const idle: StatusState = {
  server: 'running',
  busy: 0,
  completionsEnabled: true,
  model: 'coder:1.5b',
  error: undefined,
};

describe('render', () => {
  const cases: [string, Partial<StatusState>, string, string, boolean][] = [
    ['idle shows the model and toggles on click', {}, '$(sparkle) llamita: coder:1.5b', TOGGLE_COMMAND, false],
    ['no model configured', { model: '' }, '$(sparkle) llamita', TOGGLE_COMMAND, false],
    ['busy spins', { busy: 2 }, '$(sync~spin) llamita: coder:1.5b', SHOW_LOG_COMMAND, false],
    ['completions off', { completionsEnabled: false }, '$(circle-slash) llamita: coder:1.5b', TOGGLE_COMMAND, false],
    ['starting', { server: 'starting' }, '$(loading~spin) llamita', SHOW_LOG_COMMAND, false],
    ['stopped', { server: 'stopped' }, '$(debug-stop) llamita', SHOW_LOG_COMMAND, false],
    ['error opens the log', { error: 'boom' }, '$(error) llamita', SHOW_LOG_COMMAND, true],
    [
      'error wins over busy and stopped',
      { error: 'boom', busy: 1, server: 'stopped' },
      '$(error) llamita',
      SHOW_LOG_COMMAND,
      true,
    ],
  ];
  for (const [name, change, text, command, error] of cases) {
    test(name, () => {
      const view = render({ ...idle, ...change });
      assert.deepEqual([view.text, view.command, view.error], [text, command, error]);
    });
  }

  test('the error tooltip carries the message and the hint', () => {
    assert.match(render({ ...idle, error: 'llamita lsp did not start: ENOENT' }).tooltip, /ENOENT[\s\S]*show the log/);
  });
});

describe('StatusBar', () => {
  test('is shown at once, in the starting state', () => {
    const { item } = statusBar();
    assert.equal(item.visible, true);
    assert.equal(item.text, '$(loading~spin) llamita');
  });

  test('spins while tracked work runs, across overlapping requests', async () => {
    const { status, item } = statusBar();
    status.setServer('running');
    status.configure('coder', true);
    const first = deferred<string>();
    const second = deferred<string>();
    const a = status.track(first.promise);
    const b = status.track(second.promise);
    assert.equal(item.text, '$(sync~spin) llamita: coder');
    first.resolve('a');
    assert.equal(await a, 'a');
    assert.equal(item.text, '$(sync~spin) llamita: coder');
    second.reject(new Error('x'));
    await assert.rejects(b, /x/);
    assert.equal(item.text, '$(sparkle) llamita: coder');
    assert.equal(status.current.busy, 0);
  });

  test('an error turns the background red until the server starts again', () => {
    const { status, item } = statusBar();
    status.setServer('running');
    status.setError('the language server stopped (see the log)');
    assert.equal(item.backgroundColor, ERROR_BG);
    assert.equal(item.command, SHOW_LOG_COMMAND);
    status.setServer('running');
    assert.equal(item.backgroundColor, ERROR_BG, 'running alone does not clear an error');
    status.setServer('starting');
    assert.equal(item.backgroundColor, undefined);
    assert.equal(item.text, '$(loading~spin) llamita');
  });

  test('clearError restores the idle look', () => {
    const { status, item } = statusBar();
    status.setServer('running');
    status.setError('review failed');
    status.clearError();
    assert.equal(item.text, '$(sparkle) llamita');
    assert.equal(item.backgroundColor, undefined);
  });

  test('dispose disposes the item', () => {
    const { status, item } = statusBar();
    status.dispose();
    assert.equal(item.disposed, true);
  });
});
