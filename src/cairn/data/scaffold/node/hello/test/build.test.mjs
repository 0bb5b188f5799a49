import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

test("the page says hello", () => {
  assert.match(readFileSync("src/index.html", "utf8"), /hello from @@PROJECT@@/);
});
