/**
 * cdk-nag audit: runs AwsSolutions with acknowledgements ignored to list every
 * finding, then pairs findings with the acknowledgements in the construct tree.
 * A clean result means: every finding is acknowledged (with a reason), and
 * every acknowledgement matches at least one real finding (none is stale).
 */
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

export interface Finding {
  readonly ruleId: string;
  readonly severity: string;
  readonly constructPath: string;
}

export interface Acknowledgement {
  readonly ruleId: string;
  readonly reason: string;
  readonly at: string;
  readonly findings: Finding[];
}

export interface NagAudit {
  readonly findings: Finding[];
  readonly unacknowledged: Finding[];
  readonly acknowledgements: Acknowledgement[];
  readonly stale: Acknowledgement[];
}

function normalize(id: string): string {
  return id.replace(/^annotation::/i, '').replace(/^AwsSolutions::/, '');
}

function* walk(c: IConstruct): Generator<IConstruct> {
  yield c;
  for (const child of c.node.children) yield* walk(child);
}

function covers(ackPath: string, findingPath: string): boolean {
  return findingPath === ackPath || findingPath.startsWith(`${ackPath}/`);
}

export function auditNag(root: IConstruct): NagAudit {
  const pack = new AwsSolutionsChecks();
  // Ignore acknowledgements to see every finding (private method of NagPack).
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  const report = pack.validateScope(root);
  const findings: Finding[] = report.violations.flatMap((v) =>
    v.violatingResources.map((r) => ({
      ruleId: v.ruleName,
      severity: v.severity ?? 'error',
      constructPath: (r as { constructPath?: string }).constructPath ?? '?',
    })),
  );

  const acknowledgements: Acknowledgement[] = [];
  for (const c of walk(root)) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !entry.data) continue;
      for (const [rawId, reason] of Object.entries(entry.data as Record<string, string>)) {
        const ruleId = normalize(rawId);
        if (!ruleId.startsWith('AwsSolutions-')) continue; // CDK's own (CloudFormation-Validate::…)
        const matched = findings.filter((f) => f.ruleId === ruleId && covers(c.node.path, f.constructPath));
        acknowledgements.push({ ruleId, reason, at: c.node.path, findings: matched });
      }
    }
  }
  const unacknowledged = findings.filter(
    (f) => !acknowledgements.some((a) => a.ruleId === f.ruleId && covers(a.at, f.constructPath)),
  );
  const stale = acknowledgements.filter((a) => a.findings.length === 0);
  return { findings, unacknowledged, acknowledgements, stale };
}

/** Markdown table of the acknowledgements (README / report). */
export function acknowledgementTable(audit: NagAudit): string {
  const rows = audit.acknowledgements.map(
    (a) => `| \`${a.at}\` | \`${a.ruleId}\` | ${a.findings.length} | ${a.reason} |`,
  );
  return ['| acknowledged at | finding | matches | reason |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
