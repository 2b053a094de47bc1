// Public entry of the host layer (the KVM-like hypervisor model).
export {};
