import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplianceState, ApplianceStatus, GetFleetStatusResponse } from '@hsm-broker/client';
import { renderFleetStatus } from './fleet-table.js';

function appliance(fields: Partial<ApplianceStatus>): ApplianceStatus {
  return ApplianceStatus.fromPartial(fields);
}

describe('renderFleetStatus', () => {
  it('renders zones and appliances as aligned tables, sorted, with last errors', () => {
    const status = GetFleetStatusResponse.fromPartial({
      localZone: 'zone-a',
      zones: [
        { name: 'zone-b', applianceCount: 1, healthyCount: 0 },
        { name: 'zone-a', applianceCount: 2, healthyCount: 2 },
      ],
      appliances: [
        appliance({
          id: 'hsm-b1',
          zone: 'zone-b',
          state: ApplianceState.OPEN,
          failuresTotal: 12,
          requestsTotal: 40,
          latencyEwmaMs: 250.456,
          keysPresent: 3,
          workers: 0,
          workerRestartsTotal: 5,
          lastError: 'CKR_DEVICE_ERROR in C_Sign',
        }),
        appliance({
          id: 'hsm-a2',
          zone: 'zone-a',
          state: ApplianceState.HEALTHY,
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
      'ZONE            APPLIANCES  HEALTHY',
      'zone-a (local)           2        2',
      'zone-b                   1        0',
      '',
      'APPLIANCE  ZONE    STATE     IN-FLIGHT  REQUESTS  FAILURES  LATENCY MS  KEYS  WORKERS  RESTARTS',
      'hsm-a1     zone-a  DEGRADED          0        99         1        0.35    12        2         1',
      'hsm-a2     zone-a  HEALTHY           3   1234567         0        1.20    12        2         0',
      'hsm-b1     zone-b  OPEN              0        40        12      250.46     3        0         5',
      '',
      'Last errors:',
      '  hsm-b1: CKR_DEVICE_ERROR in C_Sign',
      '',
    ].join('\n');
    assert.equal(renderFleetStatus(status), expected);
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
