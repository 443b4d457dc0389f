// Makes this repository resolvable as `pulumi-sriov` from its own node_modules,
// as it is for users who installed the package: the dynamic-provider process
// requires compiled handlers by package name.
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const link = path.join(root, "node_modules", "pulumi-sriov");
fs.mkdirSync(path.dirname(link), { recursive: true });
try {
  const target = fs.readlinkSync(link);
  if (path.resolve(path.dirname(link), target) === root) process.exit(0);
  fs.unlinkSync(link);
} catch (e) {
  if (e.code === "EINVAL") fs.rmSync(link, { recursive: true, force: true });
  else if (e.code !== "ENOENT") throw e;
}
fs.symlinkSync(path.relative(path.dirname(link), root), link, "dir");
