// Runs the web console's own key parsing and token derivation (console.js)
// under Node: prints the token for the key file, then what a typo says.
// Usage: node console-token.mjs console.js KEY-FILE
import fs from "fs";

const source = fs.readFileSync(process.argv[2], "utf8");
const page = { addEventListener() {}, getElementById() { return null; } };
const { parseKey, deriveToken } =
  new Function("document", source + "\nreturn { parseKey, deriveToken };")(page);
const text = fs.readFileSync(process.argv[3], "utf8").trim();

console.log(await deriveToken(parseKey(text)));
const typo = (text[0] === "A" ? "B" : "A") + text.slice(1);
try {
  parseKey(typo);
} catch (error) {
  console.log(error.message);
}
