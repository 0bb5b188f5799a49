// Builds the front end into dist/: here, a copy of src/ (add a bundler when it needs one).
import { cpSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
cpSync("src", "dist", { recursive: true });
console.log("built dist/");
