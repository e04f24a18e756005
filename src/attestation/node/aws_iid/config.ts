/**
 * aws_iid's plugin_data and the AWS SDK environment variables spire-agent v1.13.3's IMDS client
 * honours (it is built with aws-sdk-go-v2's config.LoadDefaultConfig, which reads them). The one
 * plugin_data key is `ec2_metadata_endpoint`; it wins over AWS_EC2_METADATA_SERVICE_ENDPOINT.
 */
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';

export const AWS_IID = 'aws_iid';
/** The SDK's defaults for the two endpoint modes. */
export const IMDS_IPV4 = 'http://169.254.169.254';
export const IMDS_IPV6 = 'http://[fd00:ec2::254]';

export interface AwsIidConfig {
  /** Base URL of the metadata service; its path is replaced by each request's path, as the SDK does. */
  readonly endpoint: string;
  /** AWS_EC2_METADATA_DISABLED=true: the SDK refuses every call. */
  readonly disabled: boolean;
  /** AWS_EC2_METADATA_V1_DISABLED=true: no fallback to IMDSv1 when no session token can be had. */
  readonly v1Disabled: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

export function parseAwsIidConfig(plugin: PluginConfig, env: Env, ctx: PluginDataReaderOptions = {}): AwsIidConfig {
  const r = new PluginDataReader(plugin, ctx);
  const key = r.string('ec2_metadata_endpoint', '');
  let endpoint = key;
  if (key !== '') checkURL(r, key);
  const fromEnv = env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] ?? '';
  const mode = (env['AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE'] ?? '').trim();
  if (mode !== '' && !/^ipv[46]$/i.test(mode)) {
    r.problem('ec2_metadata_endpoint', `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=${mode} is invalid: must be either IPv6 or IPv4`);
  }
  if (endpoint === '') endpoint = fromEnv !== '' ? fromEnv : /^ipv6$/i.test(mode) ? IMDS_IPV6 : IMDS_IPV4;
  const v1 = env['AWS_EC2_METADATA_V1_DISABLED'] ?? '';
  if (v1 !== '' && !/^(true|false)$/i.test(v1)) {
    r.problem('ec2_metadata_endpoint', `AWS_EC2_METADATA_V1_DISABLED=${v1} is invalid: need true or false`);
  }
  r.finish();
  return Object.freeze({
    endpoint,
    disabled: /^true$/i.test(env['AWS_EC2_METADATA_DISABLED'] ?? ''),
    v1Disabled: /^true$/i.test(v1),
  });
}

function checkURL(r: PluginDataReader, value: string): void {
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    r.problem('ec2_metadata_endpoint', `${JSON.stringify(value)} is not an http:// or https:// URL (for example "http://169.254.169.254")`);
  }
}
