// Drives the official ollama-js client (npm `ollama`, pinned in package.json) against a llamita server.
//
// Why: ollama-js is a real consumer of the native API with its own stream loop (it throws when a
// stream ends without `done`, and only parses error bodies served as application/json), so it
// catches framing and shape mistakes that our own Python tests would not.
//
// Env: LLAMITA_URL (base URL), LLAMITA_MODEL (a chat model), LLAMITA_FIM_MODEL (a model whose
// template has a .Suffix branch). Every step asserts; the last stdout line is one JSON summary
// {"passed": [...], "failed": [{"step", "error"}]} and the exit code is 1 if any step failed.
// Pull and push are not driven: they need a registry.

import assert from "node:assert/strict";
import { Ollama } from "ollama";

const host = process.env.LLAMITA_URL;
const model = process.env.LLAMITA_MODEL ?? "smollm2:135m";
const fimModel = process.env.LLAMITA_FIM_MODEL ?? "tiny-coder:latest";
if (!host) {
  console.error("LLAMITA_URL is not set");
  process.exit(2);
}

const client = new Ollama({ host });
const options = { temperature: 0, num_predict: 8 };
const copyName = "js-copy:latest";
const createdName = "js-created:latest";
const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** Drain a stream the way ollama-js callers do; the iterator itself throws if `done` never comes. */
async function drain(stream, text) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  assert.ok(parts.length > 0, "empty stream");
  const last = parts.at(-1);
  assert.equal(last.done, true, "last stream part must have done:true");
  assert.equal(typeof last.done_reason, "string");
  for (const part of parts.slice(0, -1)) assert.equal(part.done, false);
  return { parts, last, text: parts.map(text).join("") };
}

function names(list) {
  return list.models.map((m) => m.name);
}

const steps = [
  ["version", async () => {
    const v = await client.version();
    assert.equal(typeof v.version, "string");
    assert.ok(v.version.length > 0);
  }],
  ["list", async () => {
    const list = await client.list();
    assert.ok(Array.isArray(list.models));
    for (const m of list.models) {
      assert.equal(typeof m.name, "string");
      assert.equal(typeof m.model, "string");
      assert.ok(!Number.isNaN(Date.parse(m.modified_at)), `modified_at ${m.modified_at}`);
    }
    assert.ok(names(list).includes(model), `${model} not in ${names(list)}`);
    assert.ok(names(list).includes(fimModel), `${fimModel} not in ${names(list)}`);
  }],
  ["show", async () => {
    const info = await client.show({ model });
    assert.equal(typeof info.template, "string");
    assert.equal(typeof info.details, "object");
    assert.ok("model_info" in info, "show must carry model_info");
    const fim = await client.show({ model: fimModel });
    assert.ok(fim.template.includes(".Suffix"), "FIM template must use .Suffix");
    assert.ok(fim.capabilities.includes("insert"));
  }],
  ["generate", async () => {
    const r = await client.generate({ model, prompt: "Hello", options });
    assert.equal(r.done, true);
    assert.equal(typeof r.response, "string");
    assert.equal(r.model, model);
    assert.ok(r.eval_count > 0 && r.eval_count <= options.num_predict, `eval_count ${r.eval_count}`);
  }],
  ["generate-stream", async () => {
    const stream = await client.generate({ model, prompt: "Hello", options, stream: true });
    const { last, text } = await drain(stream, (p) => p.response);
    assert.ok(text.length > 0, "no text streamed");
    assert.ok(last.eval_count > 0);
  }],
  ["ps", async () => {
    const ps = await client.ps();
    assert.ok(Array.isArray(ps.models));
    const running = ps.models.find((m) => m.name === model);
    assert.ok(running, `${model} not in ps after a generate`);
    assert.equal(running.model, model);
    assert.ok(!Number.isNaN(Date.parse(running.expires_at)), `expires_at ${running.expires_at}`);
    assert.equal(typeof running.size_vram, "number");
  }],
  ["generate-suffix", async () => {
    const r = await client.generate({ model: fimModel, prompt: "def add(a, b):\n    return ", suffix: "\n", options });
    assert.equal(r.done, true);
    assert.equal(typeof r.response, "string");
  }],
  ["generate-raw", async () => {
    const r = await client.generate({ model, prompt: "<|im_start|>user\nHi<|im_end|>\n", raw: true, options });
    assert.equal(r.done, true);
    assert.equal(typeof r.response, "string");
  }],
  ["chat", async () => {
    const r = await client.chat({ model, messages: [{ role: "user", content: "Hello" }], options });
    assert.equal(r.done, true);
    assert.equal(r.message.role, "assistant");
    assert.equal(typeof r.message.content, "string");
  }],
  ["chat-stream", async () => {
    const messages = [{ role: "user", content: "Hello" }];
    const stream = await client.chat({ model, messages, options, stream: true });
    const { parts, text } = await drain(stream, (p) => p.message.content);
    for (const p of parts) assert.equal(p.message.role, "assistant");
    assert.ok(text.length > 0, "no text streamed");
  }],
  ["chat-tools", async () => {
    // The default model's template has a tools section (as Ollama's library build of SmolLM2).
    assert.ok((await client.show({ model })).capabilities.includes("tools"));
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const r = await client.chat({ model, messages, tools: [WEATHER], options });
    assert.equal(r.done, true);
    assert.equal(r.message.role, "assistant");
    for (const call of r.message.tool_calls ?? []) assert.equal(typeof call.function.arguments, "object");
  }],
  ["chat-tools-unsupported", async () => {
    // The FIM model's template has no .Tools.
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    await assert.rejects(client.chat({ model: fimModel, messages, tools: [WEATHER], options }), (err) => {
      assert.equal(err.name, "ResponseError");
      assert.equal(err.status_code, 400);
      assert.match(err.error, /does not support tools/);
      return true;
    });
  }],
  ["embed", async () => {
    const r = await client.embed({ model, input: ["hello", "world"] });
    assert.equal(r.embeddings.length, 2);
    assert.ok(r.embeddings[0].length > 0);
    assert.equal(r.embeddings[0].length, r.embeddings[1].length);
    assert.equal(typeof r.embeddings[0][0], "number");
  }],
  ["embeddings", async () => {
    const r = await client.embeddings({ model, prompt: "hello" });
    assert.ok(r.embedding.length > 0);
    assert.equal(typeof r.embedding[0], "number");
  }],
  ["copy", async () => {
    assert.deepEqual(await client.copy({ source: model, destination: copyName }), { status: "success" });
    assert.ok(names(await client.list()).includes(copyName));
  }],
  ["delete", async () => {
    await client.delete({ model: copyName }); // sent as {"name": ...}
    assert.ok(!names(await client.list()).includes(copyName));
  }],
  ["create", async () => {
    const system = "You are a terse test assistant.";
    const r = await client.create({ model: createdName, from: model, system });
    assert.equal(r.status, "success");
    const info = await client.show({ model: createdName });
    assert.ok(info.modelfile.includes(system), "created model lost its system prompt");
    await client.delete({ model: createdName });
  }],
  ["not-found", async () => {
    await assert.rejects(client.generate({ model: "no-such-model:1b", prompt: "hi", options }), (err) => {
      assert.equal(err.name, "ResponseError");
      assert.equal(err.status_code, 404);
      assert.match(err.error, /not found/);
      return true;
    });
  }],
];

const passed = [];
const failed = [];
for (const [name, step] of steps) {
  try {
    await step();
    passed.push(name);
    console.log(`${name} ok`);
  } catch (err) {
    failed.push({ step: name, error: String(err?.stack ?? err) });
    console.log(`${name} FAIL ${err?.message ?? err}`);
  }
}
console.log(JSON.stringify({ passed, failed }));
process.exit(failed.length ? 1 : 0);
