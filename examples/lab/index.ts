// Pulumi program of examples/lab/Pulumi.yaml: the lab host, every resource
// class used directly. Configuration (see README.md):
//   pulumi config set port <port printed by the lab>
//   pulumi config set hostKey "<host key printed by the lab>"
//   pulumi config set --secret privateKey < <key file printed by the lab>
//   pulumi config set domain <libvirt domain>     (optional)
import * as pulumi from "@pulumi/pulumi";
import { labProgram } from "./program";

export = async () => {
  const config = new pulumi.Config();
  return labProgram({
    connection: {
      host: config.get("host") ?? "127.0.0.1",
      port: config.requireNumber("port"),
      user: config.get("user") ?? "root",
      hostKey: config.require("hostKey"),
      privateKey: config.requireSecret("privateKey"),
    },
    domain: config.get("domain"),
  });
};
