import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { PROTOCOL_VERSION } from '@gpumesh/protocol';
import { Public } from '../auth/auth.decorators.js';
import { NetworkDirectory } from './network-directory.js';

export class CoordinatorPeerDto {
  @ApiProperty() peerId: string;
  @ApiProperty({ type: [String], description: 'dial one of these (they end in /p2p/<peerId>)' })
  multiaddrs: string[];
  @ApiProperty({ description: 'the EVM address that signs job offers' }) signerAddress: string;
}

export class NetworkDto {
  @ApiProperty() protocolVersion: number;
  @ApiProperty({ type: [CoordinatorPeerDto] }) peers: CoordinatorPeerDto[];
}

@ApiTags('network')
@Controller('v1/network')
export class NetworkController {
  constructor(private readonly directory: NetworkDirectory) {}

  @Public()
  @Get()
  @ApiOperation({
    summary: "How provider agents reach the coordinator's libp2p peers, and whose offers to trust",
  })
  @ApiOkResponse({ type: NetworkDto })
  async get(): Promise<NetworkDto> {
    const peers = await this.directory.peers();
    return {
      protocolVersion: PROTOCOL_VERSION,
      peers: peers.map((p) => ({
        peerId: p.peerId,
        multiaddrs: p.multiaddrs,
        signerAddress: p.signerAddress,
      })),
    };
  }
}
