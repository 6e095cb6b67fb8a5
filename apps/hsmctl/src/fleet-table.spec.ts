import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ActiveFault,
  ApplianceState,
  ApplianceStatus,
  BreakerState,
  FaultKind,
  GetFleetStatusResponse,
} from '@hsm-broker/client';
import { describeFault, renderFleetStatus, renderZoneChange } from './fleet-table.js';

function appliance(fields: Partial<ApplianceStatus>): ApplianceStatus {
  return ApplianceStatus.fromPartial(fields);
}

describe('renderFleetStatus', () => {
  it('renders zones and appliances as aligned tables, sorted, with faults and last errors', () => {
    const status = GetFleetStatusResponse.fromPartial({
      localZone: 'zone-a',
      fencedZones: ['zone-b'],
      zones: [
        { name: 'zone-b', applianceCount: 1, healthyCount: 0 },
        { name: 'zone-a', applianceCount: 2, healthyCount: 2 },
      ],
      appliances: [
        appliance({
          id: 'hsm-b1',
          zone: 'zone-b',
          state: ApplianceState.OPEN,
          breakerState: BreakerState.OPEN,
          ejectionsTotal: 2,
          faults: [{ kind: FaultKind.ERROR, probability: 0.5, latencyMs: 0, expiresAt: new Date('2030-01-01T12:00:00.250Z') }],
          failuresTotal: 12,
          requestsTotal: 40,
          latencyEwmaMs: 250.456,
          keysPresent: 3,
          keysMissing: 9,
          orphans: ['hsmb:stray:v2', 'hsmb:old\u001b[31m:v1'],
          workers: 0,
          workerRestartsTotal: 5,
          lastError: 'CKR_DEVICE_ERROR in C_Sign',
        }),
        appliance({
          id: 'hsm-a2',
          zone: 'zone-a',
          state: ApplianceState.DRAINED,
          breakerState: BreakerState.CLOSED,
          drained: true,
          inFlight: 3,
          requestsTotal: 1_234_567,
          latencyEwmaMs: 1.2,
          keysPresent: 12,
          workers: 2,
        }),
        appliance({
          id: 'hsm-a1',
          zone: 'zone-a',
          state: ApplianceState.DEGRADED,
          breakerState: BreakerState.HALF_OPEN,
          ejectionsTotal: 1,
          faults: [{ kind: FaultKind.LATENCY, probability: 0, latencyMs: 250 }],
          inFlight: 0,
          requestsTotal: 99,
          failuresTotal: 1,
          latencyEwmaMs: 0.35,
          keysPresent: 12,
          workers: 2,
          workerRestartsTotal: 1,
        }),
      ],
    });
    const expected = [
      'ZONE            APPLIANCES  HEALTHY  FENCED',
      'zone-a (local)           2        2  -',
      'zone-b                   1        0  yes',
      '',
      'APPLIANCE  ZONE    STATE     BREAKER    EJECTIONS  DRAINED  IN-FLIGHT  REQUESTS  FAILURES  LATENCY MS  KEYS  MISSING  WORKERS  RESTARTS',
      'hsm-a1     zone-a  DEGRADED  HALF_OPEN          1  -                0        99         1        0.35    12        0        2         1',
      'hsm-a2     zone-a  DRAINED   CLOSED             0  yes              3   1234567         0        1.20    12        0        2         0',
      'hsm-b1     zone-b  OPEN      OPEN               2  -                0        40        12      250.46     3        9        0         5',
      '',
      'Orphans (key objects the registry does not know; reported, never deleted):',
      '  hsm-b1: hsmb:old?[31m:v1, hsmb:stray:v2',
      '',
      'Injected faults:',
      '  hsm-a1: LATENCY 250 ms, every call, until cleared',
      '  hsm-b1: ERROR, probability 0.5, until 2030-01-01T12:00:00Z',
      '',
      'Last errors:',
      '  hsm-b1: CKR_DEVICE_ERROR in C_Sign',
      '',
    ].join('\n');
    assert.equal(renderFleetStatus(status), expected);
  });

  it('lists a fenced zone that has no appliances, and shows a breaker state the broker did not send as -', () => {
    const rendered = renderFleetStatus(
      GetFleetStatusResponse.fromPartial({
        localZone: 'zone-a',
        zones: [{ name: 'zone-a', applianceCount: 1, healthyCount: 1 }],
        fencedZones: ['zone-z'],
        appliances: [appliance({ id: 'hsm-a1', zone: 'zone-a', state: ApplianceState.HEALTHY })],
      }),
    );
    assert.match(rendered, /^zone-z\s+0\s+0\s+yes$/m);
    assert.match(rendered, /^hsm-a1\s+zone-a\s+HEALTHY\s+-\s+0\s+-\s/m);
    assert.doesNotMatch(rendered, /Orphans|Injected faults|Last errors/);
  });

  it('says so when there are no appliances', () => {
    const rendered = renderFleetStatus(GetFleetStatusResponse.fromPartial({ localZone: 'z' }));
    assert.equal(rendered, 'No appliances.\n');
  });

  it('shows a state it does not know by number instead of dropping the row', () => {
    const rendered = renderFleetStatus(
      GetFleetStatusResponse.fromPartial({ appliances: [appliance({ id: 'x', zone: 'z', state: 9 as ApplianceState })] }),
    );
    assert.match(rendered, /^x\s+z\s+9\s/m);
  });
});

describe('describeFault', () => {
  it('names the kind, the latency of a LATENCY fault, the probability and the expiry', () => {
    const fault = (fields: Partial<ActiveFault>): ActiveFault => ActiveFault.fromPartial(fields);
    assert.equal(describeFault(fault({ kind: FaultKind.HANG })), 'HANG, every call, until cleared');
    assert.equal(
      describeFault(fault({ kind: FaultKind.CRASH, probability: 0.01, expiresAt: new Date('2030-05-06T07:08:09Z') })),
      'CRASH, probability 0.01, until 2030-05-06T07:08:09Z',
    );
    assert.equal(
      describeFault(fault({ kind: FaultKind.LATENCY, latencyMs: 40, probability: 1, expiresAt: new Date(0) })),
      'LATENCY 40 ms, probability 1, until cleared',
    );
    assert.equal(describeFault(fault({ kind: 9 as FaultKind })), '9, every call, until cleared');
  });
});

describe('renderZoneChange', () => {
  it('says what happened to the zone and how healthy it is', () => {
    assert.equal(
      renderZoneChange('Fenced', { name: 'az-b', applianceCount: 2, healthyCount: 1 }),
      'Fenced zone az-b: 1 of 2 appliances healthy.\n',
    );
  });
});
