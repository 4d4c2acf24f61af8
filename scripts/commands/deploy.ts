/** `baton deploy`: Kubernetes rendering lands with the deploy work; until then this says so. */
export async function main(): Promise<number> {
  console.error('baton deploy: not available in this build');
  return 2;
}
