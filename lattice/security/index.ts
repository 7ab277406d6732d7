/** Security of a lattice: the least-privilege NATS permissions of each participant role. */
export {
  mergePermissions,
  permissionsConf,
  permissionsJwt,
  roleOf,
  rolePermissions,
  Roles,
  storeSubjects,
  type PermissionScope,
  type Permissions,
  type Role,
  type SubjectList,
} from './permissions.ts';
