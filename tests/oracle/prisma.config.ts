// The oracle's Prisma config (tests/oracle/install.sh copies it next to node_modules).
//
// env (prisma.sh sets the first three):
//   DATABASE_URL               the PostgreSQL database
//   PRISMA_ORACLE_DIR          the install dir (schema.prisma lives there)
//   PRISMA_ORACLE_MIGRATIONS   absolute path of the migrations folder
//   PRISMA_ORACLE_SCRIPT_MODE  how a migration.sql reaches PostgreSQL:
//     simple   (default) the whole file as ONE simple-query message, which is what the native
//              schema engine does (`simple_query(script)`, Prisma <= 7.3): PostgreSQL runs the
//              statements in one implicit transaction. This is the behaviour we compare with.
//     adapter  @prisma/adapter-pg's own executeScript: split on every `;`, each piece
//              autocommitted (what the wasm engine with a driver adapter does).
import path from "node:path";
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

const dir = process.env.PRISMA_ORACLE_DIR ?? process.cwd();
const migrations = process.env.PRISMA_ORACLE_MIGRATIONS ?? path.join(dir, "migrations");
const mode = process.env.PRISMA_ORACLE_SCRIPT_MODE ?? "simple";

function withScriptMode(adapter: any) {
  if (mode === "simple") {
    adapter.executeScript = async (script: string) => {
      try {
        // A query without parameters goes out as one simple-query message.
        await adapter.client.query(script);
      } catch (e) {
        adapter.onError(e);
      }
    };
  }
  return adapter;
}

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join(dir, "schema.prisma"),
  migrations: { path: migrations },
  async adapter() {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("migrator's Prisma oracle: DATABASE_URL is not set");
    const base: any = new PrismaPg({
      connectionString: url,
      allowExitOnIdle: process.env.PRISMA_ORACLE_FAST_EXIT !== "0",
    });
    return {
      provider: base.provider,
      adapterName: base.adapterName,
      connect: async () => withScriptMode(await base.connect()),
      connectToShadowDb: async () => withScriptMode(await base.connectToShadowDb()),
    } as any;
  },
});
