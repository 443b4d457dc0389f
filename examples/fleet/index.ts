// Pulumi program of the top-level project (Pulumi.yaml `main`): a hypervisor
// fleet from stack configuration, rolled out in waves. See ./README.md and
// ./config.ts for the configuration format.
import { runFleet } from "./program";

export = async () => runFleet();
