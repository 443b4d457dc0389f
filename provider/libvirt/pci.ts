// PCI addresses as operators write them ("0000:03:10.2", what lspci and
// sysfs show) and as libvirt writes them (<address type='pci' domain='0x0000'
// bus='0x03' slot='0x10' function='0x2'/>, hex or decimal).
import { el, XmlElement } from "./xml";

const CANONICAL = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

export interface PciParts {
  domain: number;
  bus: number;
  slot: number;
  function: number;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

export function pciParts(address: string): PciParts {
  const m = CANONICAL.exec(address);
  if (!m) throw new Error(`not a PCI address: ${JSON.stringify(address)}`);
  return { domain: parseInt(m[1], 16), bus: parseInt(m[2], 16), slot: parseInt(m[3], 16), function: parseInt(m[4], 16) };
}

export function pciString(p: PciParts): string {
  return `${hex(p.domain, 4)}:${hex(p.bus, 2)}:${hex(p.slot, 2)}.${hex(p.function, 1)}`;
}

/** A number in one of libvirt's attribute forms ("0x10", "16"). */
function attrNumber(v: string | undefined, what: string, max: number): number {
  if (v === undefined) return 0; // libvirt's default for an omitted domain
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v.slice(2), 16) : /^[0-9]+$/.test(v) ? parseInt(v, 10) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`PCI address ${what} ${JSON.stringify(v)} is out of range`);
  return n;
}

/** Reads `<address type='pci' …/>`; undefined for any other address type. */
export function pciFromElement(e: XmlElement | undefined): string | undefined {
  if (!e || (e.attrs.type !== undefined && e.attrs.type !== "pci")) return undefined;
  if (e.attrs.bus === undefined || e.attrs.slot === undefined) return undefined;
  return pciString({
    domain: attrNumber(e.attrs.domain, "domain", 0xffff),
    bus: attrNumber(e.attrs.bus, "bus", 0xff),
    slot: attrNumber(e.attrs.slot, "slot", 0x1f),
    function: attrNumber(e.attrs.function, "function", 7),
  });
}

export function pciElement(address: string): XmlElement {
  const p = pciParts(address);
  return el("address", {
    type: "pci",
    domain: `0x${hex(p.domain, 4)}`,
    bus: `0x${hex(p.bus, 2)}`,
    slot: `0x${hex(p.slot, 2)}`,
    function: `0x${hex(p.function, 1)}`,
  });
}
