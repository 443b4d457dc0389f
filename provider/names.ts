// The resource names SriovHost gives its children, in one place: the SDK
// names them with these, and discover uses them to key the import ids it
// prints.

/** A resource-name-safe form of a PF key ("0000:41:00.0" → "0000-41-00.0"). */
export function nameSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "");
}

export const childNames = {
  kernelArgs: (host: string) => `${host}-kernel-args`,
  /** `pfKey`: the PF's selector value as given (interface, PCI address or MAC). */
  pf: (host: string, pfKey: string) => `${host}-${nameSafe(pfKey)}`,
  vf: (host: string, pfKey: string, index: number) => `${childNames.pf(host, pfKey)}-vf${index}`,
  poolNetwork: (host: string, network: string) => `${host}-net-${nameSafe(network)}`,
};

/**
 * The id each resource reports, for the `import` option (pulumi-sriov's
 * resources adopt through it; see IMPORT_ID in provider/resource.ts).
 */
export const importIds = {
  /** IommuKernelArgs: `iommu-kernel-args@<hostname as the host reports it>`. */
  kernelArgs: (hostname: string) => `iommu-kernel-args@${hostname}`,
  /** SriovPf: the PF's PCI address. */
  pf: (pciAddress: string) => pciAddress,
  /** VirtualFunction: `<PF PCI address>/vf<index>`. */
  vf: (pfPciAddress: string, index: number) => `${pfPciAddress}/vf${index}`,
  /** VfPoolNetwork: `<libvirt URI>#network/<name>`. */
  poolNetwork: (libvirtUri: string, name: string) => `${libvirtUri}#network/${name}`,
  /** DomainVfInterface: `<libvirt URI>#domain/<domain>/interface/<MAC>`. */
  domainInterface: (libvirtUri: string, domain: string, mac: string) => `${libvirtUri}#domain/${domain}/interface/${mac}`,
};
