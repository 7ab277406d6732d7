/**
 * The raw baseline of the TLS RPC bench: a plain NATS queue subscriber that echoes, in its own
 * process, connected over TLS the way every participant connects (lattice/control connectParticipant
 * with the compiled TLS settings). Usage: tls-responder.ts <tls-url> <ca-file> <subject>
 */
import { connectParticipant } from '../../lattice/control/index.ts';
import { compileNatsConnect } from '../../lattice/options/index.ts';

const [url, ca, subject] = process.argv.slice(2);
if (!url || !ca || !subject) {
  console.error('usage: tls-responder.ts <tls-url> <ca-file> <subject>');
  process.exit(2);
}
const nc = await connectParticipant(compileNatsConnect({ servers: [url], lattice: 'bench', role: 'host', auth: { tlsCa: ca } }), 'bench-tls-responder');
nc.subscribe(subject, { queue: 'bench-raw', callback: (_err, msg) => void msg.respond(msg.data) });
await nc.flush();
console.log('ready');
const stop = async () => {
  await nc.drain().catch(() => {});
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
