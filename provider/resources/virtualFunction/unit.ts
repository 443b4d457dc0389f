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

/**
 * The shell script the unit runs, one statement per line. Values are
 * validated tokens. It starts few processes (each is a fork and exec, slow at
 * boot and on a busy host): sysfs is read with `read`, links resolved with
 * `cd -P`, names by parameter expansion, and the attributes go to one
 * `ip -batch` (`-force`: each is tried even when one before it was refused).
 */
export function unitScript(pfPci: string, index: number, d: Resolved): string[] {
  const vf = `vf ${index}`;
  const lines = [
    `p=/sys/bus/pci/devices/${pfPci}; n=0; rc=0`,
    // rd FILE: its first line in $x ("" when unreadable); pfnet: the PF's interface name in $pf; addr: the VF interface's MAC in $a.
    `rd() { x=; [ -e "$1" ] && { read -r x < "$1" || :; }; }`,
    `pfnet() { pf=; for i in $p/net/*; do [ -e "$i" ] && pf=\${i##*/}; break; done; [ -n "$pf" ]; }`,
    `addr() { a=; for i in $v/net/*/address; do [ -e "$i" ] && { read -r a < "$i" || :; }; break; done; }`,
    // VFs appear after the PF unit (or udev rule, or module option) made them.
    `while [ ! -e $p/virtfn${index} ] || ! pfnet; do n=$((n+1)); if [ $n -gt ${WAIT_SECONDS * 5} ]; then echo "VF ${index} of PF ${pfPci} did not appear within ${WAIT_SECONDS} s" >&2; exit 1; fi; sleep 0.2; done`,
    // The PF's name is looked up now (names can change between boots), and the VF's PCI address.
    `cd -P $p/virtfn${index} && v=$PWD || { echo "VF ${index} of PF ${pfPci} disappeared" >&2; exit 1; }; cd /; vf=\${v##*/}`,
  ];
  const vlan = [`vlan ${d.vlan}`];
  if (d.vlan !== 0 || d.qos !== 0) vlan.push(`qos ${d.qos}`);
  if (d.vlanProtocol !== "802.1Q") vlan.push(`proto ${d.vlanProtocol}`);
  const set = [`mac ${d.mac}`, vlan.join(" "), `spoofchk ${d.spoofCheck ? "on" : "off"}`, `trust ${d.trust ? "on" : "off"}`];
  // Defaults are what a new VF has; setting them could only fail on drivers
  // that lack the feature (igb has no link state, and takes rates only with a link).
  if (d.linkState !== "auto") set.push(`state ${d.linkState}`);
  lines.push(`printf '%s\\n' ${set.map((w) => `"link set dev $pf ${vf} ${w}"`).join(" ")} | ip -force -batch - || rc=1`);
  if (d.minTxRate !== 0 || d.maxTxRate !== 0) {
    lines.push(
      `ip link set dev "$pf" up; n=0; rd /sys/class/net/$pf/carrier; while [ "$x" != 1 ] && [ $n -lt ${LINK_WAIT_SECONDS * 5} ]; do n=$((n+1)); sleep 0.2; rd /sys/class/net/$pf/carrier; done`,
      `ip link set dev "$pf" ${vf} min_tx_rate ${d.minTxRate} max_tx_rate ${d.maxTxRate} || rc=1`,
    );
  }
  if (d.driver === "vfio-pci") {
    lines.push(
      `[ -d /sys/bus/pci/drivers/vfio-pci ] || modprobe vfio-pci || rc=1`,
      `echo vfio-pci > $v/driver_override || rc=1`,
      `drv=; [ -e $v/driver ] && cd -P $v/driver && drv=\${PWD##*/}; cd /`,
      `if [ "$drv" != vfio-pci ]; then { [ ! -e $v/driver ] || echo $vf > $v/driver/unbind; } && echo $vf > /sys/bus/pci/drivers_probe || rc=1; fi`,
    );
  } else {
    lines.push(
      // Undo a vfio-pci binding left over from before; otherwise the VF keeps
      // its default driver, rebound when its interface does not use the MAC yet.
      `rd $v/driver_override; if [ -n "$x" ] && [ "$x" != "(null)" ]; then echo > $v/driver_override; [ ! -e $v/driver ] || echo $vf > $v/driver/unbind; echo $vf > /sys/bus/pci/drivers_probe || rc=1; fi`,
    );
    if (d.mac !== ZERO_MAC) {
      // Until its address can be read: a new interface is renamed by udev
      // right after it appears (slowly at boot), and a read during the rename finds nothing.
      const waitNetdev = `m=0; addr; while [ -z "$a" ] && [ $m -lt ${PROBE_WAIT_SECONDS * 5} ]; do m=$((m+1)); sleep 0.2; addr; done`;
      lines.push(
        // At boot the VF driver may still be probing: wait for its interface.
        `rd $p/sriov_drivers_autoprobe; if [ "$x" = 1 ]; then ${waitNetdev}; else addr; fi`,
        // The VF driver asks the PF for the MAC when it binds, and the PF
        // answers only while it is up and out of reset (igb: "PF still in
        // reset state"), so bring it up and rebind until the interface has it.
        `if [ -n "$a" ] && [ "$a" != ${d.mac} ]; then ip link set dev "$pf" up || rc=1; n=0; while [ "$a" != ${d.mac} ] && [ $n -lt ${REBINDS} ]; do n=$((n+1)); sleep 1; if [ -e $v/driver ]; then echo $vf > $v/driver/unbind; fi; echo $vf > /sys/bus/pci/drivers_probe; ${waitNetdev}; done; if [ "$a" != ${d.mac} ]; then echo "VF ${index} of PF ${pfPci}: its interface has MAC $a, not ${d.mac}, after ${REBINDS} rebinds" >&2; rc=1; fi; fi`,
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
