/** The xDS messages SDS reads, as proto-loader decodes them (keepCase, oneofs, defaults). */

export interface ProtoValue {
  readonly kind?: string;
  readonly boolValue?: boolean;
  readonly stringValue?: string;
}

export interface NodeMessage {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: { readonly fields?: Readonly<Record<string, ProtoValue>> } | null;
  readonly user_agent_name?: string;
  readonly user_agent_version?: string;
  readonly user_agent_build_version?: {
    readonly version?: { readonly major_number?: number; readonly minor_number?: number; readonly patch?: number } | null;
  } | null;
}

export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: NodeMessage | null;
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: { readonly code?: number; readonly message?: string } | null;
}

export interface DiscoveryResponse {
  readonly version_info: string;
  readonly resources: readonly unknown[];
  readonly type_url: string;
  readonly nonce: string;
}
