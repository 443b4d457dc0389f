// tsc compiles only TypeScript: this copies the host-side shell programs
// (provider/scripts/*.sh) into dist beside their compiled loader, so the
// built and the packed package find them where the source tree does.
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const from = path.join(root, "provider", "scripts");
const to = path.join(root, "dist", "provider", "scripts");
fs.mkdirSync(to, { recursive: true });
for (const name of fs.readdirSync(from)) {
  if (name.endsWith(".sh")) fs.copyFileSync(path.join(from, name), path.join(to, name));
}
