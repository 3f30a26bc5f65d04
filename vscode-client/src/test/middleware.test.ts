import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  ACCEPT_COMMAND,
  createMiddleware,
  DID_SHOW_COMPLETION,
  SERVER_ACCEPT_COMMAND,
  type Acceptance,
} from '../middleware';
import { toServerSettings, type Settings } from '../settings';
import { deferred, settings, statusBar } from './fakes';

type AnyFn = (...args: unknown[]) => unknown;

function setup(overrides: Partial<Settings> = {}) {
  const current = settings(overrides);
  const { status, item } = statusBar();
  status.setServer('running');
  status.configure(current.completionModel, current.completionsEnabled);
  const offered: [string, number][] = [];
  const notified: [string, unknown][] = [];
  const middleware = createMiddleware({
    settings: () => current,
    serverSettings: () => toServerSettings(current, 'secret'),
    track: (work) => status.track(work),
    offered: (languageId, items) => offered.push([languageId, items]),
    notify: (method, params) => notified.push([method, params]),
  });
  return { middleware, status, item, offered, notified };
}

const document = { languageId: 'python', uri: { toString: () => 'file:///p/a.py' } };
const position = { line: 1, character: 4 };
const context = { triggerKind: 1 };
const token = { isCancellationRequested: false };

function inline(middleware: ReturnType<typeof createMiddleware>, next: AnyFn, doc = document): Promise<unknown> {
  const provide = middleware.provideInlineCompletionItems as unknown as AnyFn;
  return Promise.resolve(provide(doc, position, context, token, next));
}

describe('inline completion middleware', () => {
  test('asks the server and wraps each item command to count acceptances', async () => {
    const { middleware, offered } = setup();
    const serverCommand = { title: '', command: 'llamita.accepted', arguments: ['id-1'] };
    const items: { insertText: string; command?: unknown }[] = [
      { insertText: 'return a + b', command: serverCommand },
      { insertText: 'pass' },
    ];
    const calls: unknown[][] = [];
    const result = await inline(middleware, (...args) => {
      calls.push(args);
      return Promise.resolve(items);
    });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0], [document, position, context, token]);
    assert.equal(result, items);
    const first = items[0]?.command as unknown as { command: string; arguments: Acceptance[] };
    const second = items[1] as { command?: { command: string; arguments: Acceptance[] } };
    assert.equal(first.command, ACCEPT_COMMAND);
    assert.deepEqual(first.arguments, [{ languageId: 'python', command: serverCommand }]);
    assert.deepEqual(second.command?.arguments, [{ languageId: 'python', command: undefined }]);
    assert.deepEqual(offered, [['python', 2]]);
  });

  test('reports the item VS Code shows with the server command, once per text', async () => {
    const { middleware, notified } = setup();
    const serverCommand = {
      title: 'llamita: completion accepted',
      command: SERVER_ACCEPT_COMMAND,
      arguments: [{ model: 'coder', language: 'python', length: 12 }],
    };
    const answer = () => [{ insertText: 'return a + b', command: { ...serverCommand } }, { insertText: 'pass' }];
    await inline(middleware, () => answer());
    await inline(middleware, () => answer()); // VS Code asks again while the same text is shown
    await inline(middleware, () => null);
    await inline(middleware, () => [{ insertText: { value: 'x = ${1:1}' } }]); // a SnippetString
    assert.deepEqual(notified, [
      [DID_SHOW_COMPLETION, { item: { insertText: 'return a + b', command: serverCommand } }],
      [DID_SHOW_COMPLETION, { item: { insertText: 'x = ${1:1}', command: undefined } }],
    ]);
  });

  test('handles an InlineCompletionList and a null answer', async () => {
    const { middleware, offered } = setup();
    const list = { items: [{ insertText: 'x = 1' }] };
    assert.equal(await inline(middleware, () => list), list);
    assert.equal(await inline(middleware, () => null), null);
    assert.deepEqual(offered, [
      ['python', 1],
      ['python', 0],
    ]);
  });

  test('shows the spinner while the request is in flight', async () => {
    const { middleware, item } = setup({ completionModel: 'coder' });
    const pending = deferred<unknown[]>();
    const running = inline(middleware, () => pending.promise);
    assert.equal(item.text, '$(sync~spin) llamita: coder');
    pending.resolve([]);
    await running;
    assert.equal(item.text, '$(sparkle) llamita: coder');
  });

  test('sends nothing when completions are toggled off', async () => {
    const { middleware } = setup({ completionsEnabled: false });
    let called = false;
    assert.equal(
      await inline(middleware, () => {
        called = true;
        return [];
      }),
      undefined,
    );
    assert.equal(called, false);
  });

  test('sends nothing for a disabled language', async () => {
    const { middleware } = setup({ languages: { '*': true, python: false } });
    let called = false;
    await inline(middleware, () => {
      called = true;
      return [];
    });
    assert.equal(called, false);
    await inline(
      middleware,
      () => {
        called = true;
        return [];
      },
      { ...document, languageId: 'go' },
    );
    assert.equal(called, true);
  });

  test('the popup completion fallback is never requested in VS Code', async () => {
    const { middleware } = setup();
    let called = false;
    const provide = middleware.provideCompletionItem as unknown as AnyFn;
    assert.equal(
      provide(document, position, context, token, () => {
        called = true;
      }),
      undefined,
    );
    assert.equal(called, false);
  });
});

describe('executeCommand middleware', () => {
  test('runs the accept command without the busy spinner', async () => {
    const { middleware, status } = setup();
    const pending = deferred<undefined>();
    const execute = middleware.executeCommand as unknown as AnyFn;
    const running = execute(SERVER_ACCEPT_COMMAND, [{ model: 'm' }], () => pending.promise) as Promise<unknown>;
    assert.equal(status.current.busy, 0);
    pending.resolve(undefined);
    await running;
  });

  test('tracks server commands on the status bar', async () => {
    const { middleware, status } = setup();
    const pending = deferred<string>();
    const execute = middleware.executeCommand as unknown as AnyFn;
    const running = execute('llamita.reviewFile', ['file:///p/a.py'], () => pending.promise) as Promise<string>;
    assert.equal(status.current.busy, 1);
    pending.resolve('done');
    assert.equal(await running, 'done');
    assert.equal(status.current.busy, 0);
  });
});

describe('workspace/configuration middleware', () => {
  const configure = (middleware: ReturnType<typeof createMiddleware>, items: object[], next: AnyFn) =>
    Promise.resolve((middleware.workspace?.configuration as unknown as AnyFn)({ items }, token, next));

  test('answers the llamita section with the server settings, API key included', async () => {
    const { middleware } = setup({ completionModel: 'coder' });
    const answer = (await configure(middleware, [{ section: 'llamita' }, { section: 'llamita.completionModel' }], () =>
      assert.fail('next must not be called'),
    )) as [{ apiKey: string; completionModel: string }, string];
    assert.equal(answer[0].apiKey, 'secret');
    assert.equal(answer[0].completionModel, 'coder');
    assert.equal(answer[1], 'coder');
  });

  test('delegates other sections and merges the answers in order', async () => {
    const { middleware } = setup({ reviewModel: 'chat' });
    const answer = (await configure(middleware, [{ section: 'editor' }, { section: 'llamita.reviewModel' }], () => [
      { tabSize: 4 },
      'from vscode',
    ])) as unknown[];
    assert.deepEqual(answer, [{ tabSize: 4 }, 'chat']);
  });
});
