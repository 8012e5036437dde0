// Runs the web console's own token check (console.js) under Node: prints
// the token of the token file, then what a shared key pasted instead says.
// Usage: node console-token.mjs console.js TOKEN-FILE KEY-FILE
import fs from "fs";

const source = fs.readFileSync(process.argv[2], "utf8");
const page = { addEventListener() {}, getElementById() { return null; } };
const { parseToken } = new Function("document", source + "\nreturn { parseToken };")(page);

console.log(parseToken(fs.readFileSync(process.argv[3], "utf8")));
try {
  parseToken(fs.readFileSync(process.argv[4], "utf8"));
} catch (error) {
  console.log(error.message);
}
