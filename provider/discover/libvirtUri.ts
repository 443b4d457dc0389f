/** The libvirt connection discover reads (and the pool networks it adopts use). */
export const LIBVIRT_URI = "qemu:///system";
