import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';

import { describePr, PrError, prArgs, prEnv, runProcess } from '../pr';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llamita-pr-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A stand-in `llamita` executable: a Node script run through its shebang. */
function fakeCli(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!${process.execPath}\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('prArgs / prEnv', () => {
  test('markdown output, model flag only when a model is set', () => {
    assert.deepEqual(prArgs({ prModel: '', reviewModel: '' }), ['pr', '--format', 'markdown']);
    assert.deepEqual(prArgs({ prModel: 'a', reviewModel: 'b' }), ['pr', '--format', 'markdown', '--model', 'a']);
    assert.deepEqual(prArgs({ prModel: '', reviewModel: 'b' }), ['pr', '--format', 'markdown', '--model', 'b']);
  });

  test('server URL and key override the environment only when set', () => {
    const base = { OLLAMA_HOST: 'user', HOME: '/h' };
    assert.deepEqual(prEnv(base, { serverUrl: '' }, undefined), { OLLAMA_HOST: 'user', HOME: '/h', NO_COLOR: '1' });
    assert.deepEqual(prEnv(base, { serverUrl: 'http://box' }, 'k'), {
      OLLAMA_HOST: 'http://box',
      HOME: '/h',
      NO_COLOR: '1',
      LLAMITA_API_KEY: 'k',
    });
    assert.equal(base.OLLAMA_HOST, 'user', 'the base environment is not modified');
  });
});

describe('describePr with a real process', { skip: process.platform === 'win32' }, () => {
  const settings = { prModel: '', reviewModel: 'chat', serverUrl: 'http://box:1' };

  test('returns stdout; the CLI sees its arguments, cwd and environment', async () => {
    const cli = fakeCli(
      'llamita-ok',
      'process.stdout.write(`# Title\\n\\nargs=${process.argv.slice(2).join(" ")}\\n` +' +
        ' `cwd=${process.cwd()}\\nhost=${process.env.OLLAMA_HOST}\\nkey=${process.env.LLAMITA_API_KEY}\\n`);' +
        ' process.stderr.write("progress on stderr\\n");',
    );
    const out = await describePr(runProcess, { executable: cli, cwd: dir, settings, apiKey: 'k-1', env: process.env });
    assert.equal(
      out,
      `# Title\n\nargs=pr --format markdown --model chat\ncwd=${fs.realpathSync(dir)}\nhost=http://box:1\nkey=k-1\n`,
    );
  });

  test('a non-zero exit becomes a PrError with the CLI error line', async () => {
    const cli = fakeCli(
      'llamita-fail',
      'process.stderr.write("warming up\\nError: unknown base branch \'main\'\\n"); process.exit(1);',
    );
    await assert.rejects(
      describePr(runProcess, { executable: cli, cwd: dir, settings, apiKey: undefined, env: process.env }),
      (error: unknown) =>
        error instanceof PrError &&
        error.message === "unknown base branch 'main'" &&
        error.stderr.startsWith('warming up'),
    );
  });

  test('empty output is an error', async () => {
    const cli = fakeCli('llamita-empty', '');
    await assert.rejects(
      describePr(runProcess, { executable: cli, cwd: dir, settings, apiKey: undefined, env: process.env }),
      /printed nothing/,
    );
  });

  test('aborting kills the process', async () => {
    const cli = fakeCli('llamita-slow', 'setTimeout(() => process.stdout.write("late"), 10000);');
    const controller = new AbortController();
    const started = Date.now();
    const running = describePr(runProcess, {
      executable: cli,
      cwd: dir,
      settings,
      apiKey: undefined,
      env: process.env,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(running, { name: 'AbortError' });
    assert.ok(Date.now() - started < 5000);
  });

  test('a missing executable rejects with ENOENT', async () => {
    await assert.rejects(runProcess(path.join(dir, 'nope'), [], { cwd: dir, env: process.env }), { code: 'ENOENT' });
  });
});
