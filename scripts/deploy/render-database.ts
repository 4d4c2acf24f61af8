/**
 * PostgreSQL, run by CloudNativePG: a `Cluster` (bootstrap database and owner; CNPG
 * writes their credentials to the `<cluster>-app` Secret) and a `Pooler`, PgBouncer in
 * **transaction** mode, that every Baton pod connects through. Transaction pooling
 * is why the runtime keeps no session state (no SET, LISTEN, session advisory locks or
 * startup parameters); test/k8s/pooler.test.ts proves it against a real PgBouncer.
 *
 * The tool servers' side-effect ledger is a second, small Cluster (`<name>-tools-db`,
 * database and owner `ledger`): tool servers reach it with the credentials CNPG writes
 * to its own `-app` Secret, so no tool server holds the runtime's credentials and no
 * runtime pod holds the ledger's. It is rendered when any tool server uses a ledger.
 *
 * Sizing (README "Run on Kubernetes" → "Capacity"): pods hold a connection only for a claim or a
 * commit, so `default_pool_size` server connections serve many more clients;
 * `max_connections` must cover pooler instances × default_pool_size plus headroom.
 */
import type { DeployConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { names } from './names.ts';

export function renderDatabase(c: DeployConfig): Manifest[] {
  const n = names(c);
  const d = c.database;
  const needed = d.pooler.instances * d.pooler.defaultPoolSize + 10;
  if (d.maxConnections < needed) {
    throw new Error(
      `database.maxConnections (${d.maxConnections}) is below what the pooler can open: ` +
        `${d.pooler.instances} instances × defaultPoolSize ${d.pooler.defaultPoolSize} + 10 for the operator and psql = ${needed}`,
    );
  }
  const cluster: Manifest = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: meta(c, n.cluster, 'database'),
    spec: {
      instances: d.instances,
      ...(d.imageName ? { imageName: d.imageName } : {}),
      bootstrap: { initdb: { database: d.database, owner: d.owner } },
      postgresql: { parameters: { max_connections: String(d.maxConnections) } },
      storage: { size: d.storage, ...(d.storageClass ? { storageClass: d.storageClass } : {}) },
      ...(d.resources ? { resources: d.resources } : {}),
      enableSuperuserAccess: false,
    },
  };
  const pooler: Manifest = {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Pooler',
    metadata: meta(c, n.pooler, 'database'),
    spec: {
      cluster: { name: n.cluster },
      instances: d.pooler.instances,
      type: 'rw',
      pgbouncer: {
        poolMode: 'transaction',
        parameters: {
          default_pool_size: String(d.pooler.defaultPoolSize),
          max_client_conn: String(d.pooler.maxClientConn),
        },
      },
    },
  };
  const ledger = Object.values(c.tools).some((t) => t.ledger) ? [renderLedger(c)] : [];
  return [cluster, pooler, ...ledger];
}

export const LEDGER_DATABASE = 'ledger';

function renderLedger(c: DeployConfig): Manifest {
  const n = names(c);
  const l = c.toolLedger;
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: meta(c, n.ledgerCluster, 'database'),
    spec: {
      instances: l.instances,
      ...(l.imageName ? { imageName: l.imageName } : {}),
      bootstrap: { initdb: { database: LEDGER_DATABASE, owner: LEDGER_DATABASE } },
      storage: { size: l.storage, ...(l.storageClass ? { storageClass: l.storageClass } : {}) },
      ...(l.resources ? { resources: l.resources } : {}),
      enableSuperuserAccess: false,
    },
  };
}
