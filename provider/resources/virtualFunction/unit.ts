// The systemd unit that re-applies a VF's attributes and driver binding
// whenever its VFs come back: at boot (after the PF's VFs exist, before
// libvirt and networking start) and when SriovPf re-creates VFs and
// restarts the PF's `pulumi-sriov-vf-<pf>-<index>.service` units. The script is
// safe to re-run: every step sets a value, none toggles one.
import { systemdQuote } from "../../host/quote";
import { pfUnitName, unitName } from "./schema";
import { ZERO_MAC } from "./mac";
import type { Resolved } from "./plan";

/** How long the unit waits for the VF (and the PF's interface) to appear. */
export const WAIT_SECONDS = 60;
/** How long it waits for the PF's link before rate limits (drivers need a link for them). */
export const LINK_WAIT_SECONDS = 30;
/** How long it waits for the VF's interface after a (re)bind. */
export const PROBE_WAIT_SECONDS = 10;
/** Rebinds tried until the VF's interface shows the administrative MAC. */
export const REBINDS = 5;

/** The shell script the unit runs, one statement per line. Values are validated tokens. */
export function unitScript(pfPci: string, index: number, d: Resolved): string[] {
  const vf = `vf ${index}`;
  const lines = [
    `p=/sys/bus/pci/devices/${pfPci}; n=0`,
    // VFs appear after the PF unit (or udev rule, or module option) made them.
    `while [ ! -e $p/virtfn${index} ] || [ -z "$(ls $p/net 2>/dev/null)" ]; do n=$((n+1)); if [ $n -gt ${WAIT_SECONDS * 5} ]; then echo "VF ${index} of PF ${pfPci} did not appear within ${WAIT_SECONDS} s" >&2; exit 1; fi; sleep 0.2; done`,
    // The PF's name is looked up now: names can change between boots.
    `pf=$(ls $p/net | head -n 1); v=$(readlink -f $p/virtfn${index}); vf=$(basename $v); rc=0`,
    `ip link set dev "$pf" ${vf} mac ${d.mac} || rc=1`,
  ];
  const vlan = [`vlan ${d.vlan}`];
  if (d.vlan !== 0 || d.qos !== 0) vlan.push(`qos ${d.qos}`);
  if (d.vlanProtocol !== "802.1Q") vlan.push(`proto ${d.vlanProtocol}`);
  lines.push(`ip link set dev "$pf" ${vf} ${vlan.join(" ")} || rc=1`);
  lines.push(`ip link set dev "$pf" ${vf} spoofchk ${d.spoofCheck ? "on" : "off"} || rc=1`);
  lines.push(`ip link set dev "$pf" ${vf} trust ${d.trust ? "on" : "off"} || rc=1`);
  // Defaults are what a new VF has; setting them could only fail on drivers
  // that lack the feature (igb has no link state, and takes rates only with a link).
  if (d.linkState !== "auto") lines.push(`ip link set dev "$pf" ${vf} state ${d.linkState} || rc=1`);
  if (d.minTxRate !== 0 || d.maxTxRate !== 0) {
    lines.push(
      `ip link set dev "$pf" up; n=0; while [ "$(cat /sys/class/net/$pf/carrier 2>/dev/null)" != 1 ] && [ $n -lt ${LINK_WAIT_SECONDS * 5} ]; do n=$((n+1)); sleep 0.2; done`,
      `ip link set dev "$pf" ${vf} min_tx_rate ${d.minTxRate} max_tx_rate ${d.maxTxRate} || rc=1`,
    );
  }
  if (d.driver === "vfio-pci") {
    lines.push(
      `modprobe vfio-pci || rc=1`,
      `echo vfio-pci > $v/driver_override || rc=1`,
      `if [ "$(basename "$(readlink -f $v/driver 2>/dev/null)")" != vfio-pci ]; then { [ ! -e $v/driver ] || echo $vf > $v/driver/unbind; } && echo $vf > /sys/bus/pci/drivers_probe || rc=1; fi`,
    );
  } else {
    lines.push(
      // Undo a vfio-pci binding left over from before; otherwise the VF keeps
      // its default driver, rebound when its interface does not use the MAC yet.
      `o=$(cat $v/driver_override 2>/dev/null); if [ -n "$o" ] && [ "$o" != "(null)" ]; then echo > $v/driver_override; [ ! -e $v/driver ] || echo $vf > $v/driver/unbind; echo $vf > /sys/bus/pci/drivers_probe || rc=1; fi`,
    );
    if (d.mac !== ZERO_MAC) {
      // Until its address can be read: a new interface is renamed by udev
      // right after it appears (slowly at boot), and a read during the rename finds nothing.
      const waitNetdev = `m=0; while [ -z "$(cat $v/net/*/address 2>/dev/null)" ] && [ $m -lt ${PROBE_WAIT_SECONDS * 5} ]; do m=$((m+1)); sleep 0.2; done`;
      lines.push(
        // At boot the VF driver may still be probing: wait for its interface.
        `if [ "$(cat $p/sriov_drivers_autoprobe 2>/dev/null)" = 1 ]; then ${waitNetdev}; fi`,
        `a=$(cat $v/net/*/address 2>/dev/null | head -n 1)`,
        // The VF driver asks the PF for the MAC when it binds, and the PF
        // answers only while it is up and out of reset (igb: "PF still in
        // reset state"), so bring it up and rebind until the interface has it.
        `if [ -n "$a" ] && [ "$a" != ${d.mac} ]; then ip link set dev "$pf" up || rc=1; n=0; while [ "$a" != ${d.mac} ] && [ $n -lt ${REBINDS} ]; do n=$((n+1)); sleep 1; if [ -e $v/driver ]; then echo $vf > $v/driver/unbind; fi; echo $vf > /sys/bus/pci/drivers_probe; ${waitNetdev}; a=$(cat $v/net/*/address 2>/dev/null | head -n 1); done; if [ "$a" != ${d.mac} ]; then echo "VF ${index} of PF ${pfPci}: its interface has MAC $a, not ${d.mac}, after ${REBINDS} rebinds" >&2; rc=1; fi; fi`,
      );
    }
  }
  lines.push("exit $rc");
  return lines;
}

export function renderUnit(pfPci: string, index: number, d: Resolved): string {
  const script = unitScript(pfPci, index, d);
  // Continuation lines keep `systemctl cat` readable; systemd joins them with spaces.
  const exec = systemdQuote(script.join("; \n")).split("\n").join("\\\n  ");
  const settings = [
    `mac ${d.mac}`,
    `vlan ${d.vlan}${d.qos ? ` qos ${d.qos}` : ""}${d.vlanProtocol !== "802.1Q" ? ` proto ${d.vlanProtocol}` : ""}`,
    `spoofchk ${d.spoofCheck ? "on" : "off"}`,
    `trust ${d.trust ? "on" : "off"}`,
    `state ${d.linkState}`,
    `min_tx_rate ${d.minTxRate}`,
    `max_tx_rate ${d.maxTxRate}`,
    `driver ${d.driver}`,
  ].join(", ");
  return [
    `# Written by pulumi-sriov (VirtualFunction ${index} of PF ${pfPci}); changes here are overwritten.`,
    `# ${settings}`,
    "[Unit]",
    `Description=pulumi-sriov: attributes and driver of VF ${index} of PF ${pfPci}`,
    `After=${pfUnitName(pfPci)} systemd-udev-settle.service`,
    "Before=libvirtd.service virtqemud.service virtnetworkd.service network-pre.target",
    "Wants=network-pre.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `TimeoutStartSec=${WAIT_SECONDS + LINK_WAIT_SECONDS + (REBINDS + 1) * (PROBE_WAIT_SECONDS + 1) + 30}`,
    `ExecStart=/bin/sh -c ${exec}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export { systemdQuote, unitName };
