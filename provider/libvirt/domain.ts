// Typed view of libvirt domain XML (formatdomain): the domain's identity and
// its <interface> devices, which is all DomainVfInterface and the network's
// "who uses me" check read. Interface XML for attach/detach is built here.
import { Vlan, vlanElement, vlanFromElement } from "./network";
import { pciElement, pciFromElement } from "./pci";
import { buildXml, child, children, childText, el, parseXml, toYesNo, XmlElement, XmlError, yesNo } from "./xml";

export interface VirtualPort {
  type: string;
  /** <parameters …/> attributes, e.g. { profileid: "finance" } for 802.1Qbh. */
  parameters: Record<string, string>;
}

export interface DomainInterface {
  /** "network", "hostdev", "bridge"… In live XML a pool interface shows as hostdev, with the VF it got and no network. */
  type: string;
  managed?: boolean;
  mac?: string;
  /** <source network=…/>: the libvirt network it connects to. */
  network?: string;
  /** <source><address type='pci'…/></source>: the host PCI device (VF) behind a hostdev interface. */
  pciAddress?: string;
  vlan?: Vlan;
  virtualport?: VirtualPort;
  /** Live XML only: libvirt's device alias (hostdev0, net1…). */
  alias?: string;
  /** <driver name=…/> */
  driver?: string;
}

export interface DomainDef {
  name: string;
  uuid?: string;
  /** Hypervisor type: qemu, kvm… */
  type?: string;
  /** Running domains only. */
  id?: number;
  interfaces: DomainInterface[];
}

export function interfaceFromElement(e: XmlElement): DomainInterface {
  if (e.name !== "interface") throw new XmlError(`expected <interface>, found <${e.name}>`);
  const iface: DomainInterface = { type: e.attrs.type ?? "" };
  const managed = yesNo(e.attrs.managed);
  if (managed !== undefined) iface.managed = managed;
  const mac = child(e, "mac")?.attrs.address;
  if (mac) iface.mac = mac.toLowerCase();
  const src = child(e, "source");
  if (src?.attrs.network) iface.network = src.attrs.network;
  const addr = pciFromElement(child(src, "address"));
  if (addr) iface.pciAddress = addr;
  const vlan = vlanFromElement(child(e, "vlan"));
  if (vlan) iface.vlan = vlan;
  const vp = child(e, "virtualport");
  if (vp) iface.virtualport = { type: vp.attrs.type ?? "", parameters: { ...(child(vp, "parameters")?.attrs ?? {}) } };
  const alias = child(e, "alias")?.attrs.name;
  if (alias) iface.alias = alias;
  const driver = child(e, "driver")?.attrs.name;
  if (driver) iface.driver = driver;
  return iface;
}

/** The <interface> element for attach-device/detach-device. */
export function interfaceElement(i: DomainInterface): XmlElement {
  const source =
    i.network !== undefined || i.pciAddress !== undefined
      ? el("source", { network: i.network }, [i.pciAddress ? pciElement(i.pciAddress) : undefined])
      : undefined;
  const vp = i.virtualport
    ? el("virtualport", { type: i.virtualport.type }, [Object.keys(i.virtualport.parameters).length ? el("parameters", i.virtualport.parameters) : undefined])
    : undefined;
  return el("interface", { type: i.type, managed: toYesNo(i.managed) }, [
    i.mac ? el("mac", { address: i.mac }) : undefined,
    i.driver ? el("driver", { name: i.driver }) : undefined,
    source,
    vlanElement(i.vlan),
    vp,
    i.alias ? el("alias", { name: i.alias }) : undefined,
  ]);
}

export function domainFromElement(root: XmlElement): DomainDef {
  if (root.name !== "domain") throw new XmlError(`expected <domain>, found <${root.name}>`);
  const name = childText(root, "name");
  if (!name) throw new XmlError("<domain> has no <name>");
  const def: DomainDef = { name, interfaces: children(child(root, "devices"), "interface").map(interfaceFromElement) };
  const uuid = childText(root, "uuid");
  if (uuid) def.uuid = uuid;
  if (root.attrs.type) def.type = root.attrs.type;
  if (root.attrs.id !== undefined && /^[0-9]+$/.test(root.attrs.id)) def.id = Number(root.attrs.id);
  return def;
}

export function parseDomain(xml: string): DomainDef {
  return domainFromElement(parseXml(xml));
}

export function parseInterface(xml: string): DomainInterface {
  return interfaceFromElement(parseXml(xml));
}

export function renderInterface(i: DomainInterface): string {
  return buildXml(interfaceElement(i));
}
