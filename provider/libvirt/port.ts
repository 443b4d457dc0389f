// Typed view of libvirt network port XML (formatnetworkport): one guest
// interface's connection to a network, with its owner domain. In a running
// guest a pool interface shows only the VF it got, not the network, so the
// network's ports are how to know which guests use it.
import { Vlan, vlanElement, vlanFromElement } from "./network";
import { pciElement, pciFromElement } from "./pci";
import { buildXml, child, childText, el, parseXml, toYesNo, XmlElement, XmlError, yesNo } from "./xml";

export interface NetworkPort {
  uuid: string;
  owner?: { name: string; uuid?: string };
  mac?: string;
  vlan?: Vlan;
  /** How the port is plugged: "hostdev-pci" with the VF's address for pool networks. */
  plug?: { type: string; managed?: boolean; pciAddress?: string };
}

export function portFromElement(root: XmlElement): NetworkPort {
  if (root.name !== "networkport") throw new XmlError(`expected <networkport>, found <${root.name}>`);
  const uuid = childText(root, "uuid");
  if (!uuid) throw new XmlError("<networkport> has no <uuid>");
  const port: NetworkPort = { uuid };
  const owner = child(root, "owner");
  const ownerName = childText(owner, "name");
  if (ownerName) {
    port.owner = { name: ownerName };
    const ou = childText(owner, "uuid");
    if (ou) port.owner.uuid = ou;
  }
  const mac = child(root, "mac")?.attrs.address;
  if (mac) port.mac = mac.toLowerCase();
  const vlan = vlanFromElement(child(root, "vlan"));
  if (vlan) port.vlan = vlan;
  const plug = child(root, "plug");
  if (plug) {
    port.plug = { type: plug.attrs.type ?? "" };
    const managed = yesNo(plug.attrs.managed);
    if (managed !== undefined) port.plug.managed = managed;
    // Port XML writes the plug's address without type='pci'.
    const addr = pciFromElement(child(plug, "address"));
    if (addr) port.plug.pciAddress = addr;
  }
  return port;
}

export function portElement(p: NetworkPort): XmlElement {
  return el("networkport", {}, [
    el("uuid", {}, [], p.uuid),
    p.owner ? el("owner", {}, [el("name", {}, [], p.owner.name), p.owner.uuid ? el("uuid", {}, [], p.owner.uuid) : undefined]) : undefined,
    p.mac ? el("mac", { address: p.mac }) : undefined,
    vlanElement(p.vlan),
    p.plug
      ? el("plug", { type: p.plug.type, managed: toYesNo(p.plug.managed) }, [p.plug.pciAddress ? pciElement(p.plug.pciAddress) : undefined])
      : undefined,
  ]);
}

export function parsePort(xml: string): NetworkPort {
  return portFromElement(parseXml(xml));
}

export function renderPort(p: NetworkPort): string {
  return buildXml(portElement(p));
}
