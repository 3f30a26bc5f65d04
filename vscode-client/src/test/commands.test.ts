import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { API_KEY_SECRET, COMMANDS, commandHandlers, type ActiveDocument, type Ui } from '../commands';
import type { Resolution } from '../executable';
import { ACCEPT_COMMAND, acceptanceCommand } from '../middleware';
import type { ProcessResult, RunOptions } from '../pr';
import type { Settings } from '../settings';
import { FakeLog, FakeSecrets, settings, statusBar } from './fakes';

class FakeUi implements Ui {
  document: ActiveDocument | undefined = {
    uri: 'file:///work/proj/src/a.py',
    fileName: '/work/proj/src/a.py',
    folder: '/work/proj',
  };
  workspaceFolders = ['/work/proj', '/work/other'];
  answers: (string | undefined)[] = [];
  readonly infos: string[] = [];
  readonly errors: string[] = [];
  readonly opened: string[] = [];
  readonly progress: string[] = [];
  readonly executed: unknown[][] = [];
  logShown = 0;
  cancel = false;

  activeDocument() {
    return this.document;
  }

  folders() {
    return this.workspaceFolders;
  }

  async askSecret() {
    return this.answers.shift();
  }

  info(message: string) {
    this.infos.push(message);
  }

  error(message: string) {
    this.errors.push(message);
  }

  async openMarkdown(content: string) {
    this.opened.push(content);
  }

  async withProgress<T>(title: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.progress.push(title);
    const controller = new AbortController();
    if (this.cancel) {
      controller.abort();
    }
    return task(controller.signal);
  }

  showLog() {
    this.logShown += 1;
  }

  async executeCommand(command: string, ...args: unknown[]) {
    this.executed.push([command, ...args]);
  }
}

interface Run {
  file: string;
  args: readonly string[];
  options: RunOptions;
}

function setup(options: { result?: ProcessResult; resolution?: Resolution; settings?: Partial<Settings> } = {}) {
  const ui = new FakeUi();
  const secrets = new FakeSecrets();
  const log = new FakeLog();
  const { status, item } = statusBar();
  status.setServer('running');
  const runs: Run[] = [];
  const reviewed: string[] = [];
  const updates: [string, unknown][] = [];
  const accepted: string[] = [];
  let restarts = 0;
  let reviewError: Error | undefined;
  let reviewResult: unknown = null;
  const current = settings(options.settings);
  const handlers = commandHandlers({
    ui,
    server: {
      restart: async () => {
        restarts += 1;
      },
      reviewFile: async (uri) => {
        reviewed.push(uri);
        if (reviewError !== undefined) {
          throw reviewError;
        }
        return reviewResult;
      },
    },
    settings: () => current,
    updateSetting: async (key, value) => {
      updates.push([key, value]);
    },
    secrets,
    resolve: () => options.resolution ?? { ok: true, path: '/work/proj/.venv/bin/llamita', source: 'venv' },
    run: async (file, args, runOptions) => {
      runs.push({ file, args, options: runOptions });
      if (runOptions.signal?.aborted) {
        throw Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
      }
      return options.result ?? { code: 0, stdout: '# Add FIM completions\n', stderr: '' };
    },
    env: { PATH: '/usr/bin', OLLAMA_HOST: 'from-user-env' },
    log,
    status,
    accepted: (languageId) => accepted.push(languageId),
  });
  const run = (id: string, ...args: unknown[]) => {
    const handler = handlers[id];
    assert.ok(handler, `no handler for ${id}`);
    return handler(...args);
  };
  return {
    ui,
    secrets,
    log,
    item,
    runs,
    reviewed,
    updates,
    accepted,
    run,
    handlers,
    restarts: () => restarts,
    failReview: (e: Error) => {
      reviewError = e;
    },
    setReviewResult: (result: unknown) => {
      reviewResult = result;
    },
  };
}

describe('commands', () => {
  test('a handler exists for every command in package.json and for acceptances', () => {
    const { handlers } = setup();
    assert.deepEqual(Object.keys(handlers).sort(), [...Object.values(COMMANDS), ACCEPT_COMMAND].sort());
  });
});

describe('Generate PR description', () => {
  test('runs `llamita pr` in the folder of the active file and opens its markdown', async () => {
    const { run, runs, ui, secrets, item } = setup({
      settings: { serverUrl: 'http://gpu-box:11434', reviewModel: 'qwen2.5-coder:7b' },
    });
    await secrets.store(API_KEY_SECRET, 'k-9');
    await run(COMMANDS.describePR);
    assert.equal(runs.length, 1);
    const [call] = runs;
    assert.equal(call?.file, '/work/proj/.venv/bin/llamita');
    assert.deepEqual(call?.args, ['pr', '--format', 'markdown', '--model', 'qwen2.5-coder:7b']);
    assert.equal(call?.options.cwd, '/work/proj');
    assert.equal(call?.options.env.OLLAMA_HOST, 'http://gpu-box:11434');
    assert.equal(call?.options.env.LLAMITA_API_KEY, 'k-9');
    assert.equal(call?.options.env.PATH, '/usr/bin');
    assert.deepEqual(ui.opened, ['# Add FIM completions\n']);
    assert.deepEqual(ui.progress, ['llamita: generating the PR description']);
    assert.equal(item.text, '$(sparkle) llamita');
  });

  test('the PR model wins over the review model; no model flag when neither is set', async () => {
    const a = setup({ settings: { prModel: 'pr-model', reviewModel: 'review-model' } });
    await a.run(COMMANDS.describePR);
    assert.deepEqual(a.runs[0]?.args.slice(3), ['--model', 'pr-model']);
    const b = setup();
    await b.run(COMMANDS.describePR);
    assert.deepEqual(b.runs[0]?.args, ['pr', '--format', 'markdown']);
    assert.equal(b.runs[0]?.options.env.OLLAMA_HOST, 'from-user-env', 'the user environment is kept');
    assert.equal(b.runs[0]?.options.env.LLAMITA_API_KEY, undefined);
  });

  test('without an active file, the first workspace folder is used', async () => {
    const { run, runs, ui } = setup();
    ui.document = undefined;
    await run(COMMANDS.describePR);
    assert.equal(runs[0]?.options.cwd, '/work/proj');
  });

  test('a failing CLI shows its error line, logs stderr and sets the error state', async () => {
    const stderr = 'Traceback...\nError: not a git repository: /work/proj\n';
    const { run, ui, log, item } = setup({ result: { code: 1, stdout: '', stderr } });
    await run(COMMANDS.describePR);
    assert.deepEqual(ui.opened, []);
    assert.deepEqual(ui.errors, ['PR description failed: not a git repository: /work/proj']);
    assert.ok(log.lines.some((l) => l.includes('Traceback...')));
    assert.equal(item.text, '$(error) llamita');
  });

  test('no folder open: an error, and nothing runs', async () => {
    const { run, runs, ui } = setup();
    ui.document = undefined;
    ui.workspaceFolders = [];
    await run(COMMANDS.describePR);
    assert.equal(runs.length, 0);
    assert.match(ui.errors[0] ?? '', /open a folder/);
  });

  test('llamita not installed: the resolution message is shown', async () => {
    const { run, runs, ui } = setup({ resolution: { ok: false, message: 'llamita was not found' } });
    await run(COMMANDS.describePR);
    assert.equal(runs.length, 0);
    assert.deepEqual(ui.errors, ['PR description failed: llamita was not found']);
  });

  test('cancelling is silent', async () => {
    const { run, ui, item } = setup();
    ui.cancel = true;
    await run(COMMANDS.describePR);
    assert.deepEqual(ui.errors, []);
    assert.deepEqual(ui.opened, []);
    assert.equal(item.backgroundColor, undefined);
  });
});

describe('Review current file', () => {
  test('asks the server to review the active document and reports the count', async () => {
    const { run, reviewed, ui, setReviewResult } = setup();
    setReviewResult({ uri: 'file:///work/proj/src/a.py', diagnostics: 2 });
    await run(COMMANDS.reviewCurrentFile);
    assert.deepEqual(reviewed, ['file:///work/proj/src/a.py']);
    assert.deepEqual(ui.progress, ['llamita: reviewing a.py']);
    assert.deepEqual(ui.infos, ['llamita: 2 findings in a.py.']);
    setReviewResult({ uri: 'file:///work/proj/src/a.py', diagnostics: 0 });
    await run(COMMANDS.reviewCurrentFile);
    setReviewResult(null);
    await run(COMMANDS.reviewCurrentFile);
    assert.deepEqual(ui.infos, ['llamita: 2 findings in a.py.', 'llamita: no findings in a.py.']);
  });

  test('no active document: a hint, no request', async () => {
    const { run, reviewed, ui } = setup();
    ui.document = undefined;
    await run(COMMANDS.reviewCurrentFile);
    assert.deepEqual(reviewed, []);
    assert.equal(ui.infos.length, 1);
  });

  test('a failed review sets the error state; the next success clears it', async () => {
    const { run, ui, item, failReview } = setup();
    failReview(new Error('the language server is not running (see the log)'));
    await run(COMMANDS.reviewCurrentFile);
    assert.deepEqual(ui.errors, ['review failed: the language server is not running (see the log)']);
    assert.equal(item.text, '$(error) llamita');
    failReview(undefined as unknown as Error);
    await run(COMMANDS.reviewCurrentFile);
    assert.equal(item.text, '$(sparkle) llamita');
  });
});

describe('Set API key', () => {
  test('stores the trimmed key in secret storage', async () => {
    const { run, ui, secrets } = setup();
    ui.answers = ['  k-secret  '];
    await run(COMMANDS.setApiKey);
    assert.equal(secrets.values.get(API_KEY_SECRET), 'k-secret');
  });

  test('an empty answer removes the key; Escape changes nothing', async () => {
    const { run, ui, secrets } = setup();
    await secrets.store(API_KEY_SECRET, 'old');
    ui.answers = [undefined];
    await run(COMMANDS.setApiKey);
    assert.equal(secrets.values.get(API_KEY_SECRET), 'old');
    ui.answers = [''];
    await run(COMMANDS.setApiKey);
    assert.equal(secrets.values.has(API_KEY_SECRET), false);
  });
});

describe('other commands', () => {
  test('toggle flips llamita.completions.enabled', async () => {
    const on = setup();
    await on.run(COMMANDS.toggleCompletions);
    const off = setup({ settings: { completionsEnabled: false } });
    await off.run(COMMANDS.toggleCompletions);
    assert.deepEqual(on.updates, [['completions.enabled', false]]);
    assert.deepEqual(off.updates, [['completions.enabled', true]]);
  });

  test('show log and restart', async () => {
    const { run, ui, restarts } = setup();
    await run(COMMANDS.showLog);
    await run(COMMANDS.restart);
    assert.equal(ui.logShown, 1);
    assert.equal(restarts(), 1);
  });

  test('an accepted completion is counted, then the server command runs', async () => {
    const { run, accepted, ui } = setup();
    const own = acceptanceCommand('go', { title: '', command: 'llamita.accepted', arguments: ['id-7'] });
    await run(ACCEPT_COMMAND, ...(own.arguments ?? []));
    const bare = acceptanceCommand('python', undefined);
    await run(ACCEPT_COMMAND, ...(bare.arguments ?? []));
    assert.deepEqual(accepted, ['go', 'python']);
    assert.deepEqual(ui.executed, [['llamita.accepted', 'id-7']]);
  });
});
