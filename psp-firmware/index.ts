// Public entry of the platform layer (PSP firmware, RMP, CPU RMP instructions).
export {};
