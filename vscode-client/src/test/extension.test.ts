// activate()/deactivate() against the mocked vscode module, once without a `llamita` executable
// and once with a fake `llamita lsp` (fixtures/fake-lsp.ts) driven by the real vscode-languageclient.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';

import type { ExtensionContext } from 'vscode';

import { API_KEY_SECRET, COMMANDS } from '../commands';
import { activate, deactivate } from '../extension';
import { sleep } from './fakes';
import { EventEmitter, reset, setConfig, state } from './vscode-mock';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  activationEvents: string[];
  contributes: { commands: { command: string }[] };
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llamita-ext-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

class Secrets {
  readonly values = new Map<string, string>();
  readonly changes = new EventEmitter<{ key: string }>();
  readonly onDidChange = this.changes.event;

  async get(key: string) {
    return this.values.get(key);
  }

  async store(key: string, value: string) {
    this.values.set(key, value);
    this.changes.fire({ key });
  }

  async delete(key: string) {
    this.values.delete(key);
    this.changes.fire({ key });
  }
}

function context(secrets = new Secrets()) {
  const subscriptions: { dispose(): unknown }[] = [];
  return { ctx: { subscriptions, secrets } as unknown as ExtensionContext, subscriptions, secrets };
}

interface Recorded {
  kind: string;
  method: string;
  params: Record<string, unknown>;
  argv: string[];
}

function recorded(file: string): Recorded[] {
  if (!fs.existsSync(file)) {
    return [];
  }
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Recorded);
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(20);
  }
}

describe('package.json', () => {
  test('activation is narrow: languages only, no `*` and no startup event', () => {
    assert.ok(manifest.activationEvents.length > 0);
    for (const event of manifest.activationEvents) {
      assert.match(event, /^onLanguage:[a-z]+$/);
    }
  });
});

describe('activate', () => {
  beforeEach(() => {
    reset();
    state.folders = [{ uri: { scheme: 'file', fsPath: dir, path: dir } as never, name: 'proj', index: 0 }];
  });

  afterEach(async () => {
    await deactivate();
  });

  test('without llamita: every command is registered and the status bar shows the error', async () => {
    setConfig({ 'llamita.path': path.join(dir, 'missing', 'llamita') });
    const { ctx, subscriptions } = context();
    await activate(ctx);
    for (const { command } of manifest.contributes.commands) {
      assert.ok(state.commands.has(command), `${command} is not registered`);
    }
    const [item] = state.statusItems;
    assert.equal(item?.text, '$(error) llamita');
    assert.equal(item?.command, COMMANDS.showLog);
    assert.match(String(item?.tooltip), /is not an executable file/);
    assert.ok(subscriptions.length >= manifest.contributes.commands.length + 3);
    assert.ok(state.logs[0]?.lines.some((l) => l.includes('is not an executable file')));
  });

  test('toggling completions writes the user setting and the status bar follows', async () => {
    setConfig({ 'llamita.path': path.join(dir, 'missing', 'llamita') });
    await activate(context().ctx);
    await state.commands.get(COMMANDS.restart)?.();
    setConfig({ 'llamita.path': '' });
    await state.commands.get(COMMANDS.toggleCompletions)?.();
    assert.deepEqual(state.configUpdates.at(-1), { key: 'llamita.completions.enabled', value: false, target: 1 });
  });

  test(
    'with a language server: initialize carries the settings and the stored key; changes are pushed live',
    { skip: process.platform === 'win32' },
    async () => {
      const log = path.join(dir, 'lsp.jsonl');
      const executable = path.join(dir, 'llamita');
      const fixture = path.join(__dirname, 'fixtures', 'fake-lsp.js');
      fs.writeFileSync(executable, `#!${process.execPath}\nrequire(${JSON.stringify(fixture)});\n`, { mode: 0o755 });
      process.env.FAKE_LSP_LOG = log;
      setConfig({
        'llamita.path': executable,
        'llamita.serverUrl': 'http://gpu-box:11434',
        'llamita.completionModel': 'qwen2.5-coder:1.5b-base',
        'llamita.debounceMs': 60,
      });
      const { ctx, secrets } = context();
      await secrets.store(API_KEY_SECRET, 'k-e2e');
      await activate(ctx);

      const init = await until('initialize', () => recorded(log).find((m) => m.method === 'initialize'));
      assert.deepEqual(init.argv, ['lsp']);
      assert.deepEqual(init.params.initializationOptions, {
        serverUrl: 'http://gpu-box:11434',
        apiKey: 'k-e2e',
        completionModel: 'qwen2.5-coder:1.5b-base',
        reviewOnSave: true,
        debounceMs: 60,
        enable: true,
        languages: { plaintext: false, markdown: false },
        context: true,
        snippetTokens: 384,
        definitionShare: 0.5,
      });
      const capabilities = init.params.capabilities as { textDocument?: { inlineCompletion?: object } };
      assert.ok(capabilities.textDocument?.inlineCompletion, 'the client declares inline completion support');
      // scripts/e2e.mjs replays these capabilities against the real `llamita lsp`; keep them in step.
      const replayed = path.join(__dirname, '..', '..', 'scripts', 'vscode-capabilities.json');
      if (process.env.UPDATE_CAPABILITIES === '1') {
        fs.writeFileSync(replayed, `${JSON.stringify(capabilities, null, 2)}\n`);
      }
      assert.deepEqual(
        capabilities,
        JSON.parse(fs.readFileSync(replayed, 'utf8')),
        'scripts/vscode-capabilities.json is stale: run `UPDATE_CAPABILITIES=1 npm test`',
      );
      await until('running status', () => (state.statusItems[0]?.text.startsWith('$(sparkle)') ? true : undefined));
      assert.equal(state.statusItems[0]?.text, '$(sparkle) llamita: qwen2.5-coder:1.5b-base');

      setConfig({ 'llamita.reviewModel': 'qwen2.5-coder:7b' });
      const change = await until('didChangeConfiguration', () =>
        recorded(log).find((m) => m.method === 'workspace/didChangeConfiguration'),
      );
      assert.deepEqual(change.params, {
        settings: {
          llamita: { ...(init.params.initializationOptions as object), reviewModel: 'qwen2.5-coder:7b' },
        },
      });

      state.inputAnswers = ['k-rotated'];
      await state.commands.get(COMMANDS.setApiKey)?.();
      const rotated = await until('pushed key', () =>
        recorded(log).find(
          (m) =>
            m.method === 'workspace/didChangeConfiguration' &&
            (m.params.settings as { llamita: { apiKey: string } }).llamita.apiKey === 'k-rotated',
        ),
      );
      assert.ok(rotated);
      assert.equal(recorded(log).filter((m) => m.method === 'initialize').length, 1, 'no restart for live settings');

      await deactivate();
      await until('shutdown', () => recorded(log).find((m) => m.method === 'exit'));
      delete process.env.FAKE_LSP_LOG;
    },
  );
});
