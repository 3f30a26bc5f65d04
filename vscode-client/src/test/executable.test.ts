import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { resolveExecutable, type ExecutableEnv } from '../executable';

function posix(executables: string[], PATH = '/usr/local/bin:/usr/bin'): ExecutableEnv {
  const set = new Set(executables);
  return { isExecutable: (f) => set.has(f), env: { PATH }, platform: 'linux', home: '/home/dev' };
}

describe('resolveExecutable', () => {
  test('the workspace .venv comes before PATH', () => {
    const env = posix(['/work/proj/.venv/bin/llamita', '/usr/bin/llamita']);
    assert.deepEqual(resolveExecutable('', ['/work/proj'], env), {
      ok: true,
      path: '/work/proj/.venv/bin/llamita',
      source: 'venv',
    });
  });

  test('workspace folders are tried in order', () => {
    const env = posix(['/b/.venv/bin/llamita', '/c/.venv/bin/llamita']);
    const found = resolveExecutable('', ['/a', '/b', '/c'], env);
    assert.equal(found.ok && found.path, '/b/.venv/bin/llamita');
  });

  test('PATH is searched in order when no .venv has it', () => {
    const env = posix(['/usr/bin/llamita', '/usr/local/bin/llamita']);
    assert.deepEqual(resolveExecutable('', ['/work/proj'], env), {
      ok: true,
      path: '/usr/local/bin/llamita',
      source: 'PATH',
    });
  });

  test('not found anywhere is an error that names the setting', () => {
    const found = resolveExecutable('', ['/work/proj'], posix([]));
    assert.equal(found.ok, false);
    assert.match(!found.ok ? found.message : '', /llamita\.path/);
  });

  test('a configured absolute path is used as is', () => {
    const env = posix(['/opt/llamita', '/work/proj/.venv/bin/llamita']);
    assert.deepEqual(resolveExecutable('/opt/llamita', ['/work/proj'], env), {
      ok: true,
      path: '/opt/llamita',
      source: 'setting',
    });
  });

  test('a configured path that does not exist is an error, without falling back', () => {
    const env = posix(['/usr/bin/llamita']);
    const found = resolveExecutable('/opt/missing/llamita', [], env);
    assert.equal(found.ok, false);
    assert.match(!found.ok ? found.message : '', /\/opt\/missing\/llamita is not an executable file/);
  });

  test('${workspaceFolder}, ~ and relative paths are expanded', () => {
    const env = posix(['/work/proj/tools/llamita', '/home/dev/bin/llamita']);
    const a = resolveExecutable('${workspaceFolder}/tools/llamita', ['/work/proj'], env);
    const b = resolveExecutable('tools/llamita', ['/work/proj'], env);
    const c = resolveExecutable('~/bin/llamita', [], env);
    assert.equal(a.ok && a.path, '/work/proj/tools/llamita');
    assert.equal(b.ok && b.path, '/work/proj/tools/llamita');
    assert.equal(c.ok && c.path, '/home/dev/bin/llamita');
  });

  test('a configured bare name is looked up on PATH', () => {
    const env = posix(['/usr/bin/llamita-dev']);
    const found = resolveExecutable('llamita-dev', [], env);
    assert.deepEqual(found, { ok: true, path: '/usr/bin/llamita-dev', source: 'setting' });
    assert.equal(resolveExecutable('nope', [], env).ok, false);
  });

  test('Windows: .venv\\Scripts\\llamita.exe, then PATH with PATHEXT', () => {
    const windows = (executables: string[]): ExecutableEnv => ({
      isExecutable: (f) => executables.includes(f),
      env: { Path: 'C:\\tools;C:\\bin', PATHEXT: '.COM;.EXE' },
      platform: 'win32',
      home: 'C:\\Users\\dev',
    });
    const venv = resolveExecutable('', ['C:\\proj'], windows(['C:\\proj\\.venv\\Scripts\\llamita.exe']));
    assert.equal(venv.ok && venv.path, 'C:\\proj\\.venv\\Scripts\\llamita.exe');
    const onPath = resolveExecutable('', ['C:\\proj'], windows(['C:\\bin\\llamita.exe']));
    assert.equal(onPath.ok && onPath.path, 'C:\\bin\\llamita.exe');
  });
});
