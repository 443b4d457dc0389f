// A small ordered XML element model over fast-xml-parser. libvirt's XML is
// parsed into this model, typed structs are read from it (network.ts,
// domain.ts) and built back through it; XML text is never assembled by hand,
// so names and values are always escaped by the builder.
import { XMLBuilder, XMLParser } from "fast-xml-parser";

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Text content (trimmed); undefined when the element has none. */
  text?: string;
}

const ATTR = "@_";
const ATTRS = ":@";
const TEXT = "#text";

type Ordered = Record<string, any>;

function parser(): XMLParser {
  return new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    parseAttributeValue: false,
    parseTagValue: false,
    // Attribute values are kept as written; whitespace-only text between elements is dropped below.
    trimValues: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
  });
}

function builder(): XMLBuilder {
  return new XMLBuilder({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: ATTR,
    format: true,
    indentBy: "  ",
    suppressEmptyNode: true,
  });
}

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XmlError";
  }
}

function fromOrdered(node: Ordered): XmlElement | undefined {
  const name = Object.keys(node).find((k) => k !== ATTRS);
  if (name === undefined || name === TEXT) return undefined;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries((node[ATTRS] ?? {}) as Record<string, unknown>)) attrs[k.slice(ATTR.length)] = String(v);
  const children: XmlElement[] = [];
  const texts: string[] = [];
  for (const child of (node[name] ?? []) as Ordered[]) {
    if (TEXT in child) texts.push(String(child[TEXT]));
    else {
      const c = fromOrdered(child);
      if (c) children.push(c);
    }
  }
  const el: XmlElement = { name, attrs, children };
  const text = texts.join("").trim();
  if (text) el.text = text;
  return el;
}

function toOrdered(el: XmlElement): Ordered {
  const body: Ordered[] = [];
  if (el.text !== undefined && el.text !== "") body.push({ [TEXT]: el.text });
  for (const c of el.children) body.push(toOrdered(c));
  const node: Ordered = { [el.name]: body };
  const attrs = Object.entries(el.attrs);
  if (attrs.length) node[ATTRS] = Object.fromEntries(attrs.map(([k, v]) => [ATTR + k, v]));
  return node;
}

/** Parses one XML document and returns its root element. */
export function parseXml(text: string): XmlElement {
  let doc: Ordered[];
  try {
    doc = parser().parse(text, true) as Ordered[];
  } catch (e) {
    throw new XmlError(`not well-formed XML: ${(e as { message?: string }).message ?? e}`);
  }
  const roots = doc.map(fromOrdered).filter((e): e is XmlElement => !!e);
  if (roots.length !== 1) throw new XmlError(`expected one root element, found ${roots.length}`);
  return roots[0];
}

/** Serializes an element (and its subtree) as indented XML. */
export function buildXml(el: XmlElement): string {
  return String(builder().build([toOrdered(el)])).trim() + "\n";
}

// ---- helpers for typed readers/writers --------------------------------------

export function el(name: string, attrs: Record<string, string | undefined> = {}, children: (XmlElement | undefined)[] = [], text?: string): XmlElement {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a[k] = v;
  const e: XmlElement = { name, attrs: a, children: children.filter((c): c is XmlElement => !!c) };
  if (text !== undefined) e.text = text;
  return e;
}

export function child(parent: XmlElement | undefined, name: string): XmlElement | undefined {
  return parent?.children.find((c) => c.name === name);
}

export function children(parent: XmlElement | undefined, name: string): XmlElement[] {
  return parent ? parent.children.filter((c) => c.name === name) : [];
}

export function childText(parent: XmlElement | undefined, name: string): string | undefined {
  return child(parent, name)?.text;
}

export function yesNo(v: string | undefined): boolean | undefined {
  if (v === "yes") return true;
  if (v === "no") return false;
  return undefined;
}

export function toYesNo(v: boolean | undefined): string | undefined {
  return v === undefined ? undefined : v ? "yes" : "no";
}
