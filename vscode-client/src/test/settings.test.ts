import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';

import {
  classifyChange,
  DEFAULTS,
  droppedKeys,
  isLanguageEnabled,
  KEYS,
  readSettings,
  RESTART_KEYS,
  SECTION,
  toDidChangeConfiguration,
  toServerSettings,
} from '../settings';
import { settings } from './fakes';

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { default: unknown; type: string }> } };
};

function config(values: Record<string, unknown>) {
  return { get: (key: string) => values[key] };
}

function changed(...keys: string[]) {
  return {
    affectsConfiguration: (section: string) => keys.some((k) => k === section || k.startsWith(`${section}.`)),
  };
}

describe('readSettings', () => {
  test('missing values fall back to the defaults', () => {
    assert.deepEqual(readSettings(config({})), DEFAULTS);
  });

  test('reads every key, trims strings and drops bad language switches', () => {
    const s = readSettings(
      config({
        path: ' /opt/llamita/bin/llamita ',
        serverUrl: 'http://gpu-box:11434',
        completionModel: 'qwen2.5-coder:1.5b-base',
        reviewModel: 'qwen2.5-coder:7b',
        prModel: 'llama3.1:8b',
        reviewOnSave: false,
        debounceMs: 75,
        'completions.enabled': false,
        languages: { '*': false, python: true, ' go ': true, '': true, rust: 'yes' },
        'context.enabled': false,
        'context.budget': 128,
        'context.definitionShare': 0.25,
      }),
    );
    assert.deepEqual(s, {
      path: '/opt/llamita/bin/llamita',
      serverUrl: 'http://gpu-box:11434',
      completionModel: 'qwen2.5-coder:1.5b-base',
      reviewModel: 'qwen2.5-coder:7b',
      prModel: 'llama3.1:8b',
      reviewOnSave: false,
      debounceMs: 75,
      completionsEnabled: false,
      languages: { '*': false, python: true, go: true },
      context: false,
      snippetTokens: 128,
      definitionShare: 0.25,
    });
  });

  test('mistyped values are ignored and the debounce is clamped', () => {
    const s = readSettings(config({ serverUrl: 42, reviewOnSave: 'no', debounceMs: 99999.4, languages: ['python'] }));
    assert.equal(s.serverUrl, '');
    assert.equal(s.reviewOnSave, true);
    assert.equal(s.debounceMs, 5000);
    assert.deepEqual(s.languages, DEFAULTS.languages);
    assert.equal(readSettings(config({ debounceMs: -3 })).debounceMs, 0);
    assert.equal(readSettings(config({ debounceMs: Number.NaN })).debounceMs, DEFAULTS.debounceMs);
  });

  test('the repository-context budget is clamped and its share kept in 0..1', () => {
    const s = readSettings(config({ 'context.enabled': 'off', 'context.budget': -5, 'context.definitionShare': 1.5 }));
    assert.equal(s.context, true);
    assert.equal(s.snippetTokens, 0);
    assert.equal(s.definitionShare, 1);
    assert.equal(readSettings(config({ 'context.budget': 1e6 })).snippetTokens, 8192);
    assert.equal(readSettings(config({ 'context.definitionShare': -1 })).definitionShare, 0);
    assert.equal(readSettings(config({ 'context.definitionShare': 'half' })).definitionShare, DEFAULTS.definitionShare);
  });
});

describe('server settings', () => {
  test('initializationOptions use lsp/settings.py names and carry the API key from secret storage', () => {
    const s = settings({ serverUrl: 'https://box:443', completionModel: 'coder', reviewModel: 'chat', debounceMs: 90 });
    assert.deepEqual(toServerSettings(s, 'k-123'), {
      serverUrl: 'https://box:443',
      apiKey: 'k-123',
      completionModel: 'coder',
      reviewModel: 'chat',
      reviewOnSave: true,
      debounceMs: 90,
      enable: true,
      languages: { plaintext: false, markdown: false },
      context: true,
      snippetTokens: 384,
      definitionShare: 0.5,
    });
  });

  test('empty models and no key are left out, so the server keeps its defaults', () => {
    const sent = toServerSettings(settings({ completionsEnabled: false }), undefined);
    assert.deepEqual(sent, {
      serverUrl: '',
      reviewOnSave: true,
      debounceMs: 150,
      enable: false,
      languages: { plaintext: false, markdown: false },
      context: true,
      snippetTokens: 384,
      definitionShare: 0.5,
    });
    assert.equal('apiKey' in toServerSettings(settings(), ''), false);
  });

  test('client-only settings stay in the client', () => {
    const sent = toServerSettings(settings({ path: '/x', prModel: 'p' }), undefined);
    assert.equal('path' in sent || 'prModel' in sent || 'completionsEnabled' in sent, false);
  });

  test('`*` is not sent; the language map is a copy', () => {
    const s = settings({ languages: { '*': false, python: true } });
    const sent = toServerSettings(s, undefined);
    assert.deepEqual(sent.languages, { python: true });
    Object.assign(sent.languages, { go: true });
    assert.deepEqual(s.languages, { '*': false, python: true });
  });

  test('droppedKeys lists what was sent before and is cleared now', () => {
    const before = toServerSettings(settings({ completionModel: 'coder' }), 'k');
    assert.deepEqual(droppedKeys(before, toServerSettings(settings(), undefined)), ['apiKey', 'completionModel']);
    assert.deepEqual(droppedKeys(before, toServerSettings(settings({ completionModel: 'other' }), 'k2')), []);
  });

  test('didChangeConfiguration nests the settings under the section', () => {
    const sent = toServerSettings(settings(), 'k');
    assert.deepEqual(toDidChangeConfiguration(sent), { settings: { llamita: sent } });
  });
});

describe('classifyChange', () => {
  const cases: [string, string[], string][] = [
    ['executable path restarts', ['llamita.path'], 'restart'],
    ['path wins over live keys', ['llamita.path', 'llamita.completionModel'], 'restart'],
    ['server URL is pushed', ['llamita.serverUrl'], 'push'],
    ['completion model is pushed', ['llamita.completionModel'], 'push'],
    ['review on save is pushed', ['llamita.reviewOnSave'], 'push'],
    ['languages are pushed', ['llamita.languages'], 'push'],
    ['the on/off toggle is pushed', ['llamita.completions.enabled'], 'push'],
    ['the PR model is local', ['llamita.prModel'], 'local'],
    ['the trace level is local', ['llamita.trace.server'], 'local'],
    ['other extensions are ignored', ['editor.fontSize'], 'none'],
  ];
  for (const [name, keys, expected] of cases) {
    test(name, () => assert.equal(classifyChange(changed(...keys)), expected));
  }

  test('RESTART_KEYS is exactly the executable path', () => {
    assert.deepEqual(RESTART_KEYS, ['llamita.path']);
  });
});

describe('isLanguageEnabled', () => {
  const cases: [Record<string, boolean>, string, boolean][] = [
    [{ '*': true }, 'python', true],
    [{ '*': true, python: false }, 'python', false],
    [{ '*': false, python: true }, 'python', true],
    [{ '*': false, python: true }, 'go', false],
    [{}, 'go', true],
    [{ go: false }, 'rust', true],
  ];
  for (const [languages, id, expected] of cases) {
    test(`${id} with ${JSON.stringify(languages)}`, () => assert.equal(isLanguageEnabled({ languages }, id), expected));
  }
});

describe('package.json', () => {
  const properties = manifest.contributes.configuration.properties;

  test('contributes every setting the extension reads, with the same default', () => {
    for (const [field, key] of Object.entries(KEYS)) {
      const contributed = properties[`${SECTION}.${key}`];
      assert.ok(contributed, `llamita.${key} is not contributed`);
      assert.deepEqual(contributed.default, DEFAULTS[field as keyof typeof DEFAULTS], `default of llamita.${key}`);
    }
  });

  test('contributes nothing the extension does not read (besides the trace level)', () => {
    const read = new Set([...Object.values(KEYS).map((k) => `${SECTION}.${k}`), 'llamita.trace.server']);
    assert.deepEqual(
      Object.keys(properties).filter((k) => !read.has(k)),
      [],
    );
  });

  test('the API key is not a setting', () => {
    assert.equal(
      Object.keys(properties).some((k) => /key|token|secret/i.test(k)),
      false,
    );
  });
});
