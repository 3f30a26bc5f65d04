import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { LanguageClient, State } from 'vscode-languageclient/node';

import type { Resolution } from '../executable';
import {
  buildServerOptions,
  createLanguageClient,
  LlamitaServer,
  REVIEW_FILE_COMMAND,
  type ClientFactory,
} from '../server';
import type { Settings } from '../settings';
import { clientFactory, FakeLog, settings, sleep, statusBar } from './fakes';

const FOUND: Resolution = { ok: true, path: '/work/proj/.venv/bin/llamita', source: 'venv' };

function setup(options: { factory?: ClientFactory; resolution?: Resolution; key?: string } = {}) {
  let current: Settings = settings({ serverUrl: 'http://box:11434', completionModel: 'coder' });
  let key = options.key;
  const fake = clientFactory();
  const { status, item } = statusBar();
  const log = new FakeLog();
  const resolved: string[] = [];
  const server = new LlamitaServer({
    createClient: options.factory ?? fake.factory,
    settings: () => current,
    apiKey: async () => key,
    folders: () => ['/work/proj'],
    resolve: (configured) => {
      resolved.push(configured);
      return options.resolution ?? FOUND;
    },
    log: log.asChannel(),
    status,
    offered: () => undefined,
    restartDelayMs: 20,
  });
  return {
    server,
    clients: fake.clients,
    status,
    item,
    log,
    resolved,
    update: (change: Partial<Settings>) => {
      current = { ...current, ...change };
    },
    setKey: (value: string | undefined) => {
      key = value;
    },
  };
}

const changed = (...keys: string[]) => ({
  affectsConfiguration: (section: string) => keys.some((k) => k === section || k.startsWith(`${section}.`)),
});

describe('LlamitaServer', () => {
  test('starts `<llamita> lsp` in the workspace folder with the settings as initializationOptions', async () => {
    const { server, clients, item } = setup({ key: 'k-1' });
    await server.start();
    assert.equal(clients.length, 1);
    const client = clients[0]!;
    assert.deepEqual(client.serverOptions, {
      command: '/work/proj/.venv/bin/llamita',
      args: ['lsp'],
      options: { cwd: '/work/proj' },
    });
    assert.deepEqual(client.clientOptions.initializationOptions, {
      serverUrl: 'http://box:11434',
      apiKey: 'k-1',
      completionModel: 'coder',
      reviewOnSave: true,
      debounceMs: 150,
      enable: true,
      languages: { plaintext: false, markdown: false },
      context: true,
      snippetTokens: 384,
      definitionShare: 0.5,
    });
    assert.deepEqual(client.clientOptions.documentSelector, [{ scheme: 'file' }, { scheme: 'untitled' }]);
    assert.equal(server.running, true);
    assert.equal(item.text, '$(sparkle) llamita: coder');
  });

  test('an executable that cannot be found is an error state, and nothing is spawned', async () => {
    const { server, clients, item, log } = setup({
      resolution: { ok: false, message: 'llamita was not found; set llamita.path' },
    });
    await server.start();
    assert.equal(clients.length, 0);
    assert.equal(item.text, '$(error) llamita');
    assert.match(String(item.tooltip), /set llamita\.path/);
    assert.ok(log.lines.includes('error: llamita was not found; set llamita.path'));
  });

  test('a server that fails to start is an error state', async () => {
    const fake = clientFactory((client) => {
      client.startError = new Error('spawn EACCES');
    });
    const { server, item } = setup({ factory: fake.factory });
    await server.start();
    assert.equal(item.text, '$(error) llamita');
    assert.match(String(item.tooltip), /llamita lsp did not start: spawn EACCES/);
  });

  test('a server that dies is an error; a deliberate stop is not', async () => {
    const { server, clients, item } = setup();
    await server.start();
    clients[0]!.setState(State.Stopped);
    assert.equal(item.text, '$(error) llamita');
    await server.restart();
    assert.equal(clients.length, 2);
    assert.equal(item.text, '$(sparkle) llamita: coder');
    await server.stop();
    assert.equal(item.text, '$(debug-stop) llamita');
    assert.equal(item.backgroundColor, undefined);
  });

  test('live settings and a new API key are pushed with didChangeConfiguration, without a restart', async () => {
    const { server, clients, update, setKey, item } = setup();
    await server.start();
    update({ completionModel: 'qwen2.5-coder:7b-base', debounceMs: 40 });
    await server.onConfigurationChanged(changed('llamita.completionModel', 'llamita.debounceMs'));
    setKey('k-2');
    await server.pushSettings();
    assert.equal(clients.length, 1);
    const sent = clients[0]!.notifications;
    assert.deepEqual(
      sent.map((n) => n.method),
      ['workspace/didChangeConfiguration', 'workspace/didChangeConfiguration'],
    );
    const last = sent[1]!.params as { settings: { llamita: Record<string, unknown> } };
    assert.equal(last.settings.llamita.completionModel, 'qwen2.5-coder:7b-base');
    assert.equal(last.settings.llamita.debounceMs, 40);
    assert.equal(last.settings.llamita.apiKey, 'k-2');
    assert.equal(server.serverSettings.apiKey, 'k-2');
    assert.equal(item.text, '$(sparkle) llamita: qwen2.5-coder:7b-base');
  });

  test('changing the executable path restarts once after a burst of edits', async () => {
    const { server, clients, update, resolved } = setup();
    await server.start();
    update({ path: '/opt/a/llamita' });
    await server.onConfigurationChanged(changed('llamita.path'));
    update({ path: '/opt/b/llamita' });
    await server.onConfigurationChanged(changed('llamita.path'));
    assert.equal(clients.length, 1, 'the restart is debounced');
    await sleep(80);
    assert.equal(clients.length, 2);
    assert.equal(clients[0]!.disposed, 1);
    assert.deepEqual(resolved, ['', '/opt/b/llamita']);
    assert.equal(clients[0]!.notifications.length, 0);
    await server.dispose();
  });

  test('the completions toggle is pushed as `enable` and greys the status bar', async () => {
    const { server, clients, update, item } = setup();
    await server.start();
    update({ completionsEnabled: false });
    await server.onConfigurationChanged(changed('llamita.completions.enabled'));
    assert.equal(item.text, '$(circle-slash) llamita: coder');
    const [sent] = clients[0]!.notifications;
    assert.equal((sent?.params as { settings: { llamita: { enable: boolean } } }).settings.llamita.enable, false);
  });

  test('a client-only change sends nothing', async () => {
    const { server, clients, update } = setup();
    await server.start();
    update({ prModel: 'llama3.1:8b' });
    await server.onConfigurationChanged(changed('llamita.prModel'));
    assert.equal(clients[0]!.notifications.length, 0);
    assert.equal(clients.length, 1);
  });

  test('clearing a model or the key restarts the server so that its default applies', async () => {
    const { server, clients, update, setKey, log } = setup({ key: 'k-1' });
    await server.start();
    update({ completionModel: '' });
    await server.onConfigurationChanged(changed('llamita.completionModel'));
    assert.equal(clients.length, 2);
    assert.equal(clients[0]!.disposed, 1);
    assert.equal(clients[0]!.notifications.length, 0);
    assert.equal('completionModel' in (clients[1]!.clientOptions.initializationOptions as object), false);
    assert.ok(log.lines.some((l) => l.includes('completionModel cleared')));
    setKey(undefined);
    await server.pushSettings();
    assert.equal(clients.length, 3);
    assert.equal('apiKey' in (clients[2]!.clientOptions.initializationOptions as object), false);
  });

  test('reviewFile sends workspace/executeCommand llamita.reviewFile with the URI', async () => {
    const { server, clients } = setup();
    await assert.rejects(server.reviewFile('file:///work/proj/a.py'), /not running/);
    await server.start();
    clients[0]!.requestResult = { findings: 2 };
    assert.deepEqual(await server.reviewFile('file:///work/proj/a.py'), { findings: 2 });
    assert.deepEqual(clients[0]!.requests, [
      {
        method: 'workspace/executeCommand',
        params: { command: REVIEW_FILE_COMMAND, arguments: ['file:///work/proj/a.py'] },
      },
    ]);
  });

  test('concurrent restarts run one after another', async () => {
    const { server, clients } = setup();
    await server.start();
    await Promise.all([server.restart(), server.restart()]);
    assert.equal(clients.length, 3);
    assert.deepEqual(
      clients.map((c) => c.disposed),
      [1, 1, 0],
    );
  });
});

describe('buildServerOptions', () => {
  test('stdio without extra flags; no cwd when there is no folder', () => {
    assert.deepEqual(buildServerOptions('/usr/bin/llamita', undefined), {
      command: '/usr/bin/llamita',
      args: ['lsp'],
      options: {},
    });
  });
});

describe('acceptance notifications', () => {
  test('the item VS Code shows goes to the running server as textDocument/didShowCompletion', async () => {
    const { server, clients } = setup();
    await server.start();
    const client = clients[0]!;
    const provide = client.clientOptions.middleware?.provideInlineCompletionItems as unknown as (
      ...args: unknown[]
    ) => Promise<unknown>;
    const document = { languageId: 'python', uri: { toString: () => 'file:///p/a.py' } };
    const command = { title: '', command: 'llamita.acceptCompletion', arguments: [{ model: 'coder' }] };
    await provide(document, { line: 0, character: 0 }, { triggerKind: 1 }, {}, () => [{ insertText: 'pass', command }]);
    assert.deepEqual(client.notifications, [
      { method: 'textDocument/didShowCompletion', params: { item: { insertText: 'pass', command } } },
    ]);
    await server.stop();
    await provide(document, { line: 0, character: 0 }, { triggerKind: 1 }, {}, () => [{ insertText: 'other' }]);
    assert.equal(client.notifications.length, 1); // a stopped server gets nothing
  });
});

describe('createLanguageClient', () => {
  test('builds a real vscode-languageclient client from our options', () => {
    const { server } = setup({ key: 'k' });
    const options = server.clientOptions(server.serverSettings);
    const client = createLanguageClient(buildServerOptions('/usr/bin/llamita', '/w'), options);
    assert.ok(client instanceof LanguageClient);
    assert.equal(client.state, State.Stopped);
    assert.equal((client as LanguageClient).clientOptions.initializationOptions, server.serverSettings);
    assert.equal(typeof (client as LanguageClient).clientOptions.middleware?.provideInlineCompletionItems, 'function');
  });
});
